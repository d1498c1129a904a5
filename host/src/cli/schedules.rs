//! `drowl-host schedules`: the configured schedules and the repeatables registered in
//! Redis, with their next runs. Read-only: registering and removing is `serve`'s job.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::exit;
use super::queue_args::QueueArgs;
use crate::queue::schedules::{self, format_in_zone, is_owned};

/// Arguments of `schedules`.
#[derive(Debug, Args)]
pub struct SchedulesArgs {
    /// The schedules file `serve` is given (`{"schedules": [...]}`); without it (or the
    /// settings file's `[[schedules]]`), only what is registered in Redis is listed.
    #[arg(long, env = "DROWL_SCHEDULES", value_name = "FILE")]
    pub schedules: Option<PathBuf>,
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
}

/// Runs the command; prints JSON: `configured` (each schedule of the file, its repeat key,
/// whether Redis has it and its next run) and `registered` (every repeatable in Redis,
/// `owner` "drowl-host" for those from a schedules file, "other" for the API's own).
pub async fn run(args: SchedulesArgs, settings: crate::config::Settings) -> u8 {
    let configured = settings.schedules.unwrap_or_default();
    let queue = match args.queue.connect().await {
        Ok(q) => q,
        Err(code) => return code,
    };
    let registered = match queue.get_repeatable_jobs().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read the repeatable jobs: {e}");
            return exit::USAGE;
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    let mut rows = Vec::new();
    // A plugin default is resolved by `serve`, which loads the plugins; here it is shown
    // as enabled, with what Redis has under its name.
    for u in &configured.defaults {
        let prefix = format!("{}{}.", schedules::OWNER_PREFIX, u.name);
        let in_redis = registered
            .iter()
            .find(|r| r.id.as_deref().is_some_and(|id| id.starts_with(&prefix)));
        rows.push(json!({
            "name": u.name,
            "plugin": u.plugin,
            "default": u.default,
            "cron": in_redis.and_then(|r| r.cron.clone()).or_else(|| u.cron.clone()),
            "tz": in_redis.and_then(|r| r.tz.clone()).or_else(|| u.tz.clone()),
            "key": in_redis.map(|r| r.key.clone()),
            "registered": in_redis.is_some(),
            "next": in_redis.map(|r| format_in_zone(r.next, r.tz.as_deref())),
            "nextMs": in_redis.map(|r| r.next),
        }));
    }
    for s in &configured.own {
        let key = match s.repeat_key() {
            Ok(k) => k,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        };
        let in_redis = registered.iter().find(|r| r.key == key);
        // Redis's score is the run already scheduled; without one, what `serve` would
        // schedule now.
        let next = match in_redis {
            Some(r) => Some(r.next),
            None => s.next_run_after(now).ok().flatten(),
        };
        rows.push(json!({
            "name": s.name,
            "cron": s.cron,
            "tz": s.tz,
            "job": s.job,
            "options": s.options,
            "key": key,
            "registered": in_redis.is_some(),
            "next": next.map(|n| format_in_zone(n, Some(&s.tz))),
            "nextMs": next,
        }));
    }
    let listed: Vec<_> = registered
        .iter()
        .map(|r| {
            json!({
                "key": r.key,
                "name": r.name,
                "id": r.id,
                "cron": r.cron,
                "tz": r.tz,
                "every": r.every,
                "next": format_in_zone(r.next, r.tz.as_deref()),
                "nextMs": r.next,
                "owner": if is_owned(r) { "drowl-host" } else { "other" },
            })
        })
        .collect();
    let out = json!({
        "queue": args.queue.queue,
        "configured": rows,
        "registered": listed,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    exit::OK
}
