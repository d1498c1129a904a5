//! Schedules the operator declares (`serve --schedules FILE`), kept in Redis as Bull
//! repeatable jobs.
//!
//! Why Bull's own repeatables and not a timer in the daemon: a run's job id is
//! `repeat:<md5 of the schedule>:<millis>`, so every daemon (and every restart) that
//! schedules the same tick adds the same id and Redis keeps one job; N daemons fire once
//! per tick, and drowl's API sees the schedules with `queue.getRepeatableJobs()`.
//!
//! Ownership: a schedule from the file is registered with the Bull job id
//! `drowl-host.<schedule name>.<digest>`, which Bull folds into the repeat key
//! (`<job name>:drowl-host.<schedule>.<digest>::<tz>:<cron>`). At start, [`sync`] removes
//! every repeatable whose id starts with [`OWNER_PREFIX`] that the file no longer lists;
//! repeatables drowl's API adds itself (any other id) are never touched. The digest covers
//! the job payload and options: Bull copies them from one run to the next, so without it
//! an edited payload would never take effect; with it the edited schedule gets a new key
//! and the old one is removed. Every daemon on a queue should be given the same file: the
//! last one to start decides which `drowl-host.` schedules exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use chrono::TimeZone;
use drowl_bull::{JobOptions, Queue, QueueError, RepeatOptions, RepeatableJob};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::jobs::JobRequest;

/// The start of the Bull job id of every schedule registered from the file (see the
/// module doc for the ownership rule).
pub const OWNER_PREFIX: &str = "drowl-host.";

/// The zone of a schedule that names none. Explicit rather than Bull's default (the
/// worker's local zone), so that daemons on hosts in different zones agree on the ticks.
pub const DEFAULT_TZ: &str = "UTC";

/// Options the schedule itself decides; refused in `options`.
const RESERVED_OPTIONS: [&str; 5] = ["repeat", "jobId", "delay", "prevMillis", "timestamp"];

/// Why a schedules file or a schedule is refused, or syncing failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The file cannot be read.
    #[error("cannot read schedules file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not `{"schedules": [...]}`.
    #[error("schedules file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// One schedule is invalid.
    #[error("schedule {schedule:?}: {field}: {message}")]
    Invalid {
        /// The schedule's name (or its position when it has none).
        schedule: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Redis refused a read or a write.
    #[error("schedules: {0}")]
    Queue(#[from] QueueError),
}

/// One entry of the file, as written: a schedule of its own (`cron`, `job`), or a plugin's
/// default enabled by name (`plugin`, `default`, optionally overriding `cron`, `tz` and
/// `options`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduleEntry {
    name: String,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    tz: Option<String>,
    #[serde(default)]
    job: Option<Value>,
    #[serde(default)]
    options: Option<Value>,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    default: Option<String>,
}

/// A plugin's default schedule the operator enabled, to be resolved once plugins are
/// loaded ([`ScheduleSet::resolve`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultUse {
    /// The operator's name for the schedule.
    pub name: String,
    /// The plugin's id.
    pub plugin: String,
    /// The name of the plugin's default.
    pub default: String,
    /// The operator's cron, replacing the default's.
    pub cron: Option<String>,
    /// The operator's zone, replacing the default's.
    pub tz: Option<String>,
    /// Bull options of every run.
    pub options: Option<Value>,
}

/// What a schedules file declares: schedules of its own, and plugin defaults it enables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleSet {
    /// Complete schedules.
    pub own: Vec<Schedule>,
    /// Plugin defaults enabled by name, not resolved yet.
    pub defaults: Vec<DefaultUse>,
}

impl ScheduleSet {
    /// Every schedule, with each enabled default looked up by `suggested(plugin id)` (the
    /// loaded plugin's `default_schedules`) and validated like a schedule of the file's
    /// own; the run's input gets `pluginId`. A plugin that is not loaded, or has no default
    /// of that name, is an error naming what it does have.
    pub fn resolve(
        self,
        suggested: impl Fn(&str) -> Option<Vec<crate::manifest::DefaultSchedule>>,
    ) -> Result<Vec<Schedule>, ScheduleError> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut out = self.own;
        let mut names: BTreeSet<String> = out.iter().map(|s| s.name.clone()).collect();
        for u in self.defaults {
            let invalid = |field, message: String| ScheduleError::Invalid {
                schedule: u.name.clone(),
                field,
                message,
            };
            let Some(defaults) = suggested(&u.plugin) else {
                return Err(invalid(
                    "plugin",
                    format!("plugin `{}` is not loaded", u.plugin),
                ));
            };
            let Some(d) = defaults.iter().find(|d| d.name == u.default) else {
                let known: Vec<&str> = defaults.iter().map(|d| d.name.as_str()).collect();
                return Err(invalid(
                    "default",
                    format!(
                        "plugin `{}` suggests no schedule `{}`; it suggests: {}",
                        u.plugin,
                        u.default,
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            let mut input: Value = serde_json::from_str(&d.input).map_err(|e| {
                invalid(
                    "default",
                    format!(
                        "plugin `{}`'s default `{}` has an input that is not JSON: {e}",
                        u.plugin, d.name
                    ),
                )
            })?;
            let Some(fields) = input.as_object_mut() else {
                return Err(invalid(
                    "default",
                    format!(
                        "plugin `{}`'s default `{}` has an input that is not a JSON object",
                        u.plugin, d.name
                    ),
                ));
            };
            fields.insert("pluginId".into(), Value::String(u.plugin.clone()));
            let entry = ScheduleEntry {
                name: u.name.clone(),
                cron: Some(u.cron.clone().unwrap_or_else(|| d.cron.clone())),
                tz: u.tz.clone().or_else(|| d.tz.clone()),
                job: Some(serde_json::json!({
                    "type": d.job_type, "name": d.job_name, "input": input,
                })),
                options: u.options.clone(),
                plugin: None,
                default: None,
            };
            let schedule = validate(entry, now)?;
            if !names.insert(schedule.name.clone()) {
                return Err(schedule.invalid("name", "declared twice".to_owned()));
            }
            out.push(schedule);
        }
        Ok(out)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    schedules: Vec<ScheduleEntry>,
}

/// A validated schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The operator's name for it (letters, digits, `-`, `_`).
    pub name: String,
    /// 5-field cron, or 6 with seconds first (Bull's `cron-parser` format).
    pub cron: String,
    /// IANA time zone of `cron`.
    pub tz: String,
    /// The job in drowl's `{type, name, input}` shape, the Bull job's data.
    pub job: Value,
    /// The drowl job name, the Bull job's name.
    pub job_name: String,
    /// Bull options of every run (attempts, backoff, ...), without the repeat ones.
    pub options: Map<String, Value>,
}

impl Schedule {
    /// The Bull job id folded into the repeat key: the owner prefix, the name, and a
    /// digest of what Bull copies from run to run (payload and options).
    pub fn bull_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_string(&self.job).unwrap_or_default());
        h.update([0]);
        h.update(serde_json::to_string(&self.options).unwrap_or_default());
        let digest = hex::encode(h.finalize());
        format!("{OWNER_PREFIX}{}.{}", self.name, &digest[..8])
    }

    /// The options `queue.add` gets: the operator's, the repeat and the owner id.
    pub fn job_options(&self) -> Result<JobOptions, ScheduleError> {
        let mut opts: JobOptions = serde_json::from_value(Value::Object(self.options.clone()))
            .map_err(|e| self.invalid("options", e.to_string()))?;
        opts.job_id = Some(self.bull_id());
        opts.repeat = Some(RepeatOptions {
            cron: Some(self.cron.clone()),
            tz: Some(self.tz.clone()),
            ..RepeatOptions::default()
        });
        Ok(opts)
    }

    /// The repeat key Bull stores for this schedule.
    pub fn repeat_key(&self) -> Result<String, ScheduleError> {
        Ok(drowl_bull::repeatable_key(
            &self.job_name,
            &self.job_options()?,
        )?)
    }

    /// The first run after `after_ms` (epoch ms), as the worker will schedule it.
    pub fn next_run_after(&self, after_ms: i64) -> Result<Option<i64>, ScheduleError> {
        drowl_bull::next_cron_run(&self.cron, Some(&self.tz), after_ms)
            .map_err(|e| self.invalid("cron", e.to_string()))
    }

    fn invalid(&self, field: &'static str, message: String) -> ScheduleError {
        ScheduleError::Invalid {
            schedule: self.name.clone(),
            field,
            message,
        }
    }
}

/// Reads and validates a schedules file: `{"schedules": [{"name", "cron", "tz", "job",
/// "options"}]}`, where an entry may instead enable a plugin's default schedule
/// (`{"name", "plugin", "default"}`, with optional `cron`, `tz`, `options` overrides).
pub fn load(path: &Path) -> Result<ScheduleSet, ScheduleError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_set(&text).map_err(|e| match e {
        ScheduleError::Parse { message, .. } => ScheduleError::Parse {
            path: path.display().to_string(),
            message,
        },
        other => other,
    })
}

/// Parses and validates the text of a schedules file that enables no plugin defaults
/// (see [`parse_set`] for one that may).
pub fn parse(text: &str) -> Result<Vec<Schedule>, ScheduleError> {
    parse_set(text)?.resolve(|_| None)
}

/// Parses and validates the text of a schedules file (see [`load`]); enabled plugin
/// defaults are checked for shape here and resolved by [`ScheduleSet::resolve`].
pub fn parse_set(text: &str) -> Result<ScheduleSet, ScheduleError> {
    let file: ScheduleFile = serde_json::from_str(text).map_err(|e| ScheduleError::Parse {
        path: String::new(),
        message: e.to_string(),
    })?;
    validate_all(file)
}

/// Validates schedules given as a JSON value of the file's shape, `{"schedules": [...]}`
/// (the settings file's `[[schedules]]`, converted).
pub fn parse_value(value: Value) -> Result<ScheduleSet, ScheduleError> {
    let file: ScheduleFile = serde_json::from_value(value).map_err(|e| ScheduleError::Parse {
        path: String::new(),
        message: e.to_string(),
    })?;
    validate_all(file)
}

fn validate_all(file: ScheduleFile) -> Result<ScheduleSet, ScheduleError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut names = BTreeSet::new();
    let mut set = ScheduleSet::default();
    for entry in file.schedules {
        if !names.insert(entry.name.clone()) {
            return Err(ScheduleError::Invalid {
                schedule: entry.name.clone(),
                field: "name",
                message: "declared twice".to_owned(),
            });
        }
        match (entry.plugin.clone(), entry.default.clone()) {
            (Some(plugin), Some(default)) => {
                if entry.job.is_some() {
                    return Err(ScheduleError::Invalid {
                        schedule: entry.name.clone(),
                        field: "job",
                        message: "a schedule enabling a plugin's default takes the job from \
                                  the plugin; remove `job` (override `cron`, `tz` or \
                                  `options` instead)"
                            .to_owned(),
                    });
                }
                set.defaults.push(DefaultUse {
                    name: entry.name,
                    plugin,
                    default,
                    cron: entry.cron,
                    tz: entry.tz,
                    options: entry.options,
                });
            }
            (None, None) => set.own.push(validate(entry, now)?),
            _ => {
                return Err(ScheduleError::Invalid {
                    schedule: entry.name.clone(),
                    field: "default",
                    message: "enabling a plugin's default takes both `plugin` (its id) and \
                              `default` (the name of its schedule)"
                        .to_owned(),
                });
            }
        }
    }
    Ok(set)
}

fn validate(entry: ScheduleEntry, now_ms: i64) -> Result<Schedule, ScheduleError> {
    let invalid = |field, message: String| ScheduleError::Invalid {
        schedule: entry.name.clone(),
        field,
        message,
    };
    let Some(cron) = entry.cron.clone() else {
        return Err(invalid(
            "cron",
            "missing: give a cron expression, or enable a plugin's default with `plugin` and `default`".to_owned(),
        ));
    };
    let Some(job) = entry.job.clone() else {
        return Err(invalid(
            "job",
            "missing: give the job ({type, name, input}), or enable a plugin's default with `plugin` and `default`".to_owned(),
        ));
    };
    // The name ends up inside the repeat key, which Bull's client splits on `:`; the `.`
    // separates it from the digest.
    if entry.name.is_empty()
        || !entry
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            "name",
            "must be letters, digits, `-` or `_`".to_owned(),
        ));
    }
    let request =
        JobRequest::from_value("schedule", &job).map_err(|e| invalid("job", e.to_string()))?;
    if request.name.contains(':') {
        return Err(invalid(
            "job.name",
            "must not contain `:` (Bull's client reads repeat keys split on `:`)".to_owned(),
        ));
    }
    let tz = entry.tz.clone().unwrap_or_else(|| DEFAULT_TZ.to_owned());
    if chrono_tz::Tz::from_str(&tz).is_err() {
        return Err(invalid("tz", format!("unknown time zone {tz:?}")));
    }
    let options = match entry.options.clone() {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("options", "must be a JSON object".to_owned())),
    };
    if let Some(k) = RESERVED_OPTIONS.iter().find(|k| options.contains_key(**k)) {
        return Err(invalid(
            "options",
            format!("`{k}` is set by the schedule itself"),
        ));
    }
    let schedule = Schedule {
        name: entry.name.clone(),
        cron: cron.trim().to_owned(),
        tz,
        job: serde_json::json!({
            "type": request.job_type.as_str(),
            "name": request.name,
            "input": request.input,
        }),
        job_name: request.name,
        options,
    };
    schedule.job_options()?;
    // cron-parser also reads fewer fields (filling in the rest), which hides typos.
    if !(5..=6).contains(&schedule.cron.split_whitespace().count()) {
        return Err(invalid(
            "cron",
            format!(
                "{:?} must have 5 fields, or 6 with seconds first",
                schedule.cron
            ),
        ));
    }
    if schedule.cron.contains(':') {
        return Err(invalid("cron", "must not contain `:`".to_owned()));
    }
    if schedule.next_run_after(now_ms)?.is_none() {
        return Err(invalid("cron", "never matches".to_owned()));
    }
    Ok(schedule)
}

/// What [`sync`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Schedules registered now that were not before (by name).
    pub added: Vec<String>,
    /// Schedules already registered with their next run (by name).
    pub kept: Vec<String>,
    /// Schedules registered but without a next run, added again (by name).
    pub restarted: Vec<String>,
    /// Repeat keys of `drowl-host.` schedules no longer in the file, now removed.
    pub removed: Vec<String>,
}

/// Registers every schedule as a Bull repeatable and removes the `drowl-host.`
/// repeatables the schedules no longer list, with their pending runs.
///
/// A schedule already registered whose next run exists is left as it is: re-adding it
/// would compute the next tick from this host's clock, and a clock behind the daemon that
/// ran the last tick could add that tick again once `removeOnComplete` has deleted it. A
/// registered schedule whose next run is gone (a worker died between taking a run and
/// scheduling the next, which ends a Bull chain) is added again, which restarts it.
pub async fn sync(queue: &Queue, schedules: &[Schedule]) -> Result<SyncReport, ScheduleError> {
    let before: BTreeMap<String, RepeatableJob> = queue
        .get_repeatable_jobs()
        .await?
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect();
    let mut report = SyncReport::default();
    let mut wanted = BTreeSet::new();
    for s in schedules {
        let key = s.repeat_key()?;
        let pending = match before.get(&key) {
            Some(r) => queue
                .get_job(&format!("{}{}", r.run_id_stem(), r.next))
                .await?
                .is_some(),
            None => false,
        };
        if pending {
            report.kept.push(s.name.clone());
        } else {
            queue
                .add(&s.job_name, s.job.clone(), s.job_options()?)
                .await?;
            if before.contains_key(&key) {
                report.restarted.push(s.name.clone());
            } else {
                report.added.push(s.name.clone());
            }
        }
        wanted.insert(key);
    }
    for r in queue.get_repeatable_jobs().await? {
        if is_owned(&r) && !wanted.contains(&r.key) {
            queue.remove_repeatable_by_key(&r.key).await?;
            report.removed.push(r.key);
        }
    }
    Ok(report)
}

/// Whether a registered repeatable came from a schedules file (see the module doc).
pub fn is_owned(r: &RepeatableJob) -> bool {
    r.id.as_deref()
        .is_some_and(|id| id.starts_with(OWNER_PREFIX))
}

/// Epoch ms as RFC 3339 in `tz` (UTC when `tz` is unknown or absent).
pub fn format_in_zone(ms: i64, tz: Option<&str>) -> String {
    let zone = tz.and_then(|t| chrono_tz::Tz::from_str(t).ok());
    match zone {
        Some(z) => z
            .timestamp_millis_opt(ms)
            .single()
            .map(|d| d.to_rfc3339())
            .unwrap_or_default(),
        None => chrono::Utc
            .timestamp_millis_opt(ms)
            .single()
            .map(|d| d.to_rfc3339())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggested() -> Vec<crate::manifest::DefaultSchedule> {
        vec![crate::manifest::DefaultSchedule {
            name: "hourly".into(),
            description: String::new(),
            cron: "0 * * * *".into(),
            tz: None,
            job_type: "event_ingestion".into(),
            job_name: "github-events".into(),
            input: r#"{"source":"github"}"#.into(),
        }]
    }

    fn with_defaults(entries: &str) -> Result<Vec<Schedule>, ScheduleError> {
        parse_set(&format!(r#"{{"schedules": [{entries}]}}"#))?
            .resolve(|id| (id == "github").then(suggested))
    }

    #[test]
    fn an_enabled_default_becomes_the_plugins_job_with_the_operators_overrides() {
        let s = with_defaults(
            r#"{"name":"gh","plugin":"github","default":"hourly","tz":"Asia/Tokyo","options":{"attempts":5}}"#,
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].cron, "0 * * * *");
        assert_eq!(s[0].tz, "Asia/Tokyo");
        assert_eq!(s[0].job_name, "github-events");
        assert_eq!(
            s[0].job["input"],
            serde_json::json!({"source": "github", "pluginId": "github"})
        );
        assert_eq!(s[0].options["attempts"], 5);
        let own_cron = with_defaults(
            r#"{"name":"gh","plugin":"github","default":"hourly","cron":"*/5 * * * *"}"#,
        )
        .unwrap();
        assert_eq!(own_cron[0].cron, "*/5 * * * *");
    }

    #[test]
    fn enabling_a_default_that_is_not_there_names_what_is() {
        let e = |entries: &str| with_defaults(entries).unwrap_err().to_string();
        assert!(
            e(r#"{"name":"x","plugin":"gitlab","default":"hourly"}"#)
                .contains("plugin `gitlab` is not loaded")
        );
        assert!(
            e(r#"{"name":"x","plugin":"github","default":"daily"}"#)
                .contains("suggests no schedule `daily`; it suggests: hourly")
        );
        assert!(e(r#"{"name":"x","plugin":"github"}"#).contains("both `plugin`"));
        assert!(
            e(&format!(
                r#"{{"name":"x","plugin":"github","default":"hourly","job":{JOB}}}"#
            ))
            .contains("remove `job`")
        );
        assert!(
            e(r#"{"name":"x","job":{"type":"analytics","name":"a","input":{}}}"#)
                .contains("cron: missing")
        );
        assert!(
            e(r#"{"name":"x","plugin":"github","default":"hourly","cron":"0 * *"}"#)
                .contains("cron")
        );
        assert!(
            e(r#"{"name":"x","plugin":"github","default":"hourly"},{"name":"x","plugin":"github","default":"hourly"}"#)
                .contains("declared twice")
        );
    }

    fn one(entry: &str) -> Result<Vec<Schedule>, ScheduleError> {
        parse(&format!(r#"{{"schedules": [{entry}]}}"#))
    }

    const JOB: &str =
        r#"{"type":"event_ingestion","name":"github-events","input":{"pluginId":"github"}}"#;

    fn err(entry: &str) -> String {
        one(entry).expect_err("refused").to_string()
    }

    #[test]
    fn a_schedule_is_read_with_its_zone_and_options() {
        let s = one(&format!(
            r#"{{"name":"github-hourly","cron":"0 * * * *","tz":"Asia/Tokyo","job":{JOB},"options":{{"attempts":3}}}}"#
        ))
        .unwrap()
        .remove(0);
        assert_eq!(s.tz, "Asia/Tokyo");
        assert_eq!(s.job_name, "github-events");
        let key = s.repeat_key().unwrap();
        let id = s.bull_id();
        assert!(id.starts_with("drowl-host.github-hourly."), "{id}");
        assert_eq!(key, format!("github-events:{id}::Asia/Tokyo:0 * * * *"));
        let parsed = RepeatableJob::from_key(&key, 0);
        assert!(is_owned(&parsed));
        assert_eq!(parsed.cron.as_deref(), Some("0 * * * *"));
        assert_eq!(parsed.tz.as_deref(), Some("Asia/Tokyo"));
        let opts = s.job_options().unwrap();
        assert_eq!(opts.attempts, Some(3));
    }

    #[test]
    fn no_zone_means_utc_and_seconds_are_allowed() {
        let s = one(&format!(
            r#"{{"name":"tick","cron":"* * * * * *","job":{JOB}}}"#
        ))
        .unwrap()
        .remove(0);
        assert_eq!(s.tz, "UTC");
        assert_eq!(
            s.next_run_after(1_700_000_000_500).unwrap(),
            Some(1_700_000_001_000)
        );
    }

    #[test]
    fn next_run_follows_the_zone() {
        let s = one(&format!(
            r#"{{"name":"nine","cron":"0 9 * * *","tz":"Asia/Tokyo","job":{JOB}}}"#
        ))
        .unwrap()
        .remove(0);
        // 2023-11-14T22:13:20Z → 09:00 in Tokyo is 2023-11-15T00:00:00Z.
        let next = s.next_run_after(1_700_000_000_000).unwrap().unwrap();
        assert_eq!(next, 1_700_006_400_000);
        assert_eq!(
            format_in_zone(next, Some("Asia/Tokyo")),
            "2023-11-15T09:00:00+09:00"
        );
    }

    #[test]
    fn a_changed_payload_or_option_is_a_new_key() {
        let a = one(&format!(r#"{{"name":"x","cron":"0 * * * *","job":{JOB}}}"#)).unwrap();
        let b = one(&format!(
            r#"{{"name":"x","cron":"0 * * * *","job":{JOB},"options":{{"attempts":2}}}}"#
        ))
        .unwrap();
        assert_ne!(a[0].repeat_key().unwrap(), b[0].repeat_key().unwrap());
        let again = one(&format!(r#"{{"name":"x","cron":"0 * * * *","job":{JOB}}}"#)).unwrap();
        assert_eq!(a[0].repeat_key().unwrap(), again[0].repeat_key().unwrap());
    }

    #[test]
    fn bad_schedules_are_refused_naming_the_schedule_and_field() {
        let e = err(&format!(
            r#"{{"name":"h","cron":"0 25 * * *","job":{JOB}}}"#
        ));
        assert!(e.starts_with(r#"schedule "h": cron:"#), "{e}");
        let e = err(&format!(
            r#"{{"name":"h","cron":"0 * * * *","tz":"Mars/Base","job":{JOB}}}"#
        ));
        assert!(
            e.starts_with(r#"schedule "h": tz: unknown time zone"#),
            "{e}"
        );
        let e =
            err(r#"{"name":"h","cron":"0 * * * *","job":{"type":"nope","name":"n","input":{}}}"#);
        assert!(e.starts_with(r#"schedule "h": job:"#), "{e}");
        let e = err(r#"{"name":"h","cron":"0 * * * *","job":{"name":"n","input":{}}}"#);
        assert!(e.contains("job:") && e.contains("type"), "{e}");
        let e = err(&format!(
            r#"{{"name":"h","cron":"0 * * * *","job":{JOB},"options":{{"repeat":{{"every":5}}}}}}"#
        ));
        assert!(e.starts_with(r#"schedule "h": options:"#), "{e}");
        let e = err(&format!(
            r#"{{"name":"h","cron":"0 * * * *","job":{JOB},"options":{{"attempts":"x"}}}}"#
        ));
        assert!(e.starts_with(r#"schedule "h": options:"#), "{e}");
        let e = err(&format!(
            r#"{{"name":"a:b","cron":"0 * * * *","job":{JOB}}}"#
        ));
        assert!(e.starts_with(r#"schedule "a:b": name:"#), "{e}");
        let e = err(&format!(
            r#"{{"name":"h","cron":"0 * * * *","job":{JOB},"every":5}}"#
        ));
        assert!(e.contains("every"), "{e}");
        let dup = parse(&format!(
            r#"{{"schedules":[{{"name":"h","cron":"0 * * * *","job":{JOB}}},{{"name":"h","cron":"1 * * * *","job":{JOB}}}]}}"#
        ))
        .expect_err("duplicate")
        .to_string();
        assert_eq!(dup, r#"schedule "h": name: declared twice"#);
    }
}
