//! Issue 4 end to end: the REAL `drowl-host serve` binary as the only worker on a queue,
//! driven by the REAL `bull` npm client (tests/interop/daemon_scenarios.js), with the
//! hostile test plugin installed; the `jobs` table mirror in a fresh PostgreSQL database;
//! and fault tests (SIGKILL of one of three daemons during 1,000 jobs, SIGTERM with jobs in
//! flight). The Redis restart test lives in `daemon_redis.rs`, its own binary, because it
//! takes the machine's Redis away from every other test; every test here holds
//! [`RedisInUse`] so that one waits for them (and they for it) even when run from another
//! `cargo test` at the same time.
//!
//! Needs Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432, node and the
//! wasm32-wasip2 target; nothing is faked.

mod daemon_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use daemon_support::*;
use drowl_bull::{JobState, Queue, QueueConfig};
use drowl_testkit::storage::TestDb;
use serde_json::{Value, json};
use sqlx::Row;

/// `GET /health` answered 200 in drowl's worker shape, every check `ok` with a message.
fn assert_healthy(code: u16, health: &Value) {
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["service"], "drowl-worker", "{health}");
    assert_eq!(health["version"], drowl_host::HOST_VERSION, "{health}");
    let ts = health["timestamp"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "timestamp {ts:?}: {health}"
    );
    let checks = health["checks"].as_object().expect("checks");
    assert_eq!(
        checks.keys().map(String::as_str).collect::<Vec<_>>(),
        ["postgres", "redis", "s3", "worker"],
        "{health}"
    );
    for (name, c) in checks {
        assert_eq!(c["status"], "ok", "{name}: {health}");
        assert!(
            c["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {health}"
        );
    }
}

/// Runs one interop scenario against a fresh daemon; checks the status page afterwards.
async fn interop(name: &str, concurrency: usize) -> Value {
    interop_with(name, concurrency, &[]).await
}

/// [`interop`] with extra `serve` flags.
async fn interop_with(name: &str, concurrency: usize, args: &[&str]) -> Value {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue(name);
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .concurrency(concurrency)
        .args(args)
        .name(&format!("serve for {name}"))
        .start();
    let out = scenario(name, &[], &queue).await;
    // Whatever the scenario did (timeouts drop the running job), nothing is left listed as
    // running on the status page, and health is green.
    let (code, status) = daemon.get("/").await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["activeJobs"], json!([]), "{status}");
    assert_eq!(status["queue"], json!(queue));
    assert_eq!(status["plugins"], json!(["hostile", "keywords"]));
    let (code, health) = daemon.get("/health").await;
    assert_healthy(code, &health);
    assert!(
        health["checks"]["postgres"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("embedded SQLite at ")),
        "{health}"
    );
    drop(daemon);
    obliterate(&queue).await;
    out
}

#[tokio::test]
async fn complete_with_return_value() {
    interop("complete", 1).await;
}

#[tokio::test]
async fn permanent_failures_and_retry_after() {
    interop("failures", 1).await;
}

#[tokio::test]
async fn retries_with_fixed_backoff() {
    let out = interop("retries_fixed", 1).await;
    eprintln!("fixed backoff 400 ms, measured gaps: {}", out["extra"]);
}

#[tokio::test]
async fn retries_with_exponential_and_linear_backoff() {
    let out = interop("retries_exponential", 1).await;
    eprintln!(
        "exponential 300 ms and linear 250 ms, measured gaps: {}",
        out["extra"]
    );
}

/// A `jobs` row's retry and metadata columns, from either backend, as JSON.
fn meta_json(
    status: String,
    ints: [i64; 4],
    backoff: String,
    retried: bool,
    text: [Option<String>; 4],
    tags: Vec<String>,
) -> Value {
    let [retry_attempt, retry_max_attempts, timeout_ms, priority] = ints;
    let [user_id, correlation_id, parent_job_id, error_message] = text;
    json!({
        "status": status, "retry_attempt": retry_attempt,
        "retry_max_attempts": retry_max_attempts, "timeout_ms": timeout_ms,
        "priority": priority, "backoff": backoff, "retried": retried,
        "user_id": user_id, "correlation_id": correlation_id,
        "parent_job_id": parent_job_id, "error_message": error_message, "tags": tags,
    })
}

/// The columns drowl's defaults and a job's input decide, from the embedded database.
async fn sqlite_meta(pool: &sqlx::SqlitePool, id: &str) -> Option<Value> {
    let r = sqlx::query(
        "SELECT status, retry_attempt, retry_max_attempts, timeout_ms, priority,
                retry_backoff_strategy, retry_last_at IS NOT NULL AS retried, user_id,
                correlation_id, parent_job_id, error_message, tags
           FROM jobs WHERE id = ?1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .ok()??;
    let i = |k: &str| r.get::<i64, _>(k);
    let t = |k: &str| r.get::<Option<String>, _>(k);
    let tags: Vec<String> = serde_json::from_str(&r.get::<String, _>("tags")).expect("tags");
    Some(meta_json(
        r.get("status"),
        [
            i("retry_attempt"),
            i("retry_max_attempts"),
            i("timeout_ms"),
            i("priority"),
        ],
        r.get("retry_backoff_strategy"),
        r.get::<bool, _>("retried"),
        [
            t("user_id"),
            t("correlation_id"),
            t("parent_job_id"),
            t("error_message"),
        ],
        tags,
    ))
}

/// The same columns from drowl's PostgreSQL `jobs` table (`tags` is `text[]` there).
async fn pg_meta(pool: &sqlx::PgPool, id: &str) -> Option<Value> {
    let r = sqlx::query(
        "SELECT status, retry_attempt, retry_max_attempts, timeout_ms, priority,
                retry_backoff_strategy, retry_last_at IS NOT NULL AS retried, user_id,
                correlation_id, parent_job_id, error_message, tags
           FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .ok()??;
    let i = |k: &str| i64::from(r.get::<i32, _>(k));
    let t = |k: &str| r.get::<Option<String>, _>(k);
    Some(meta_json(
        r.get("status"),
        [
            i("retry_attempt"),
            i("retry_max_attempts"),
            i("timeout_ms"),
            i("priority"),
        ],
        r.get("retry_backoff_strategy"),
        r.get::<bool, _>("retried"),
        [
            t("user_id"),
            t("correlation_id"),
            t("parent_job_id"),
            t("error_message"),
        ],
        r.get("tags"),
    ))
}

/// Waits until each id's row is final, through `read`; panics after 20 s.
async fn final_rows<F, Fut>(ids: &[&str], read: F) -> BTreeMap<String, Value>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let mut rows = BTreeMap::new();
    for id in ids {
        let row = eventually(Duration::from_secs(20), &format!("row {id} final"), || {
            let row = read((*id).to_owned());
            async move {
                row.await
                    .filter(|r| !matches!(r["status"].as_str(), Some("running" | "pending")))
            }
        })
        .await;
        rows.insert((*id).to_owned(), row);
    }
    rows
}

/// What the `job_defaults` scenario's rows must say, in either backend.
fn check_defaults_rows(ids: &Value, rows: &BTreeMap<String, Value>) {
    let row = |k: &str| {
        let id = ids[k].as_str().unwrap_or_else(|| panic!("id {k}: {ids}"));
        rows[id].clone()
    };
    // No options: drowl's defaults, and the input's correlation id, user and tags.
    let flaky = row("flaky");
    assert_eq!(flaky["status"], "failed", "{flaky}");
    assert_eq!(flaky["retry_attempt"], 3, "{flaky}");
    assert_eq!(flaky["retry_max_attempts"], 3, "{flaky}");
    assert_eq!(flaky["timeout_ms"], 300_000, "{flaky}");
    assert_eq!(flaky["backoff"], "exponential", "{flaky}");
    assert_eq!(flaky["retried"], true, "retry_last_at is set: {flaky}");
    assert_eq!(flaky["correlation_id"], "corr-42", "{flaky}");
    assert_eq!(flaky["user_id"], "user-7", "{flaky}");
    assert_eq!(flaky["tags"], json!(["devrel", "github"]), "{flaky}");
    assert_eq!(flaky["parent_job_id"], Value::Null, "{flaky}");
    assert_eq!(flaky["priority"], 0, "{flaky}");
    // Its own options win.
    let own = row("own");
    assert_eq!(
        (
            &own["retry_attempt"],
            &own["retry_max_attempts"],
            &own["timeout_ms"]
        ),
        (&json!(2), &json!(2), &json!(5000)),
        "{own}"
    );
    assert_eq!(own["tags"], json!([]), "{own}");
    assert_eq!(own["correlation_id"], Value::Null, "{own}");
    // Bad input: failed after one attempt, naming the field.
    let bad = row("bad");
    assert_eq!(
        (&bad["status"], &bad["retry_attempt"]),
        (&json!("failed"), &json!(1)),
        "{bad}"
    );
    assert!(
        bad["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("missing field `mode`")),
        "{bad}"
    );
    // Bull's priority 2 is drowl's 9; the follow-up names its parent.
    let urgent = row("urgent");
    assert_eq!(
        (&urgent["status"], &urgent["priority"]),
        (&json!("completed"), &json!(9)),
        "{urgent}"
    );
    assert_eq!(urgent["retried"], false, "{urgent}");
    let child = row("child");
    assert_eq!(child["status"], "completed", "{child}");
    assert_eq!(child["parent_job_id"], ids["urgent"], "{child}");
    assert_eq!(child["retry_max_attempts"], 3, "{child}");
}

/// drowl's defaults for jobs enqueued as drowl's API does (no options): 3 attempts 1 s
/// and 2 s apart, 5 minutes, recorded in the embedded `jobs` table with the input's
/// correlation id, user and tags; a job's own options win; bad input fails at once.
#[tokio::test]
async fn jobs_without_options_get_drowls_defaults() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("defaults");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--allow-follow-up", "keyword_extraction:keywords"])
        .name("serve with drowl's defaults")
        .start();
    let out = scenario("job_defaults", &[], &queue).await;
    eprintln!(
        "drowl's defaults, measured gaps: {}",
        out["extra"]["gapsMs"]
    );
    let ids = &out["extra"];
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    let keys: Vec<&str> = ["flaky", "own", "bad", "urgent", "child"]
        .iter()
        .map(|k| ids[k].as_str().expect("id"))
        .collect();
    let rows = final_rows(&keys, |id| {
        let pool = pool.clone();
        async move { sqlite_meta(&pool, &id).await }
    })
    .await;
    check_defaults_rows(ids, &rows);
    pool.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

/// The same columns land in drowl's PostgreSQL `jobs` table.
#[tokio::test]
async fn drowls_defaults_land_in_postgres() {
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let queue = unique_queue("defaults-pg");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .args(&[
            "--migrate",
            "--allow-follow-up",
            "keyword_extraction:keywords",
        ])
        .env("DATABASE_URL", &db.url)
        .name("serve with drowl's defaults on postgres")
        .start();
    let out = scenario("job_defaults", &[], &queue).await;
    let ids = &out["extra"];
    let pool = pg_pool(&db).await;
    let keys: Vec<&str> = ["flaky", "own", "bad", "urgent", "child"]
        .iter()
        .map(|k| ids[k].as_str().expect("id"))
        .collect();
    let rows = final_rows(&keys, |id| {
        let pool = pool.clone();
        async move { pg_meta(&pool, &id).await }
    })
    .await;
    check_defaults_rows(ids, &rows);
    pool.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

/// `--job-defaults` replaces drowl's for one type: its jobs without options retry and
/// time out as configured (and the rows say so); other types keep drowl's.
#[tokio::test]
async fn job_defaults_are_configurable_per_type() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("defaults-type");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .args(&[
            "--job-defaults",
            "event_ingestion:attempts=2,backoff=linear:300,timeout=1500",
        ])
        .name("serve with per-type defaults")
        .start();
    let out = scenario("job_defaults_per_type", &[], &queue).await;
    eprintln!(
        "per-type linear 300 ms, measured gaps: {}",
        out["extra"]["gapsMs"]
    );
    let ids = &out["extra"];
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    let keys: Vec<&str> = ["flaky", "slow", "keywords"]
        .iter()
        .map(|k| ids[k].as_str().expect("id"))
        .collect();
    let rows = final_rows(&keys, |id| {
        let pool = pool.clone();
        async move { sqlite_meta(&pool, &id).await }
    })
    .await;
    let flaky = &rows[keys[0]];
    assert_eq!(
        (
            &flaky["retry_max_attempts"],
            &flaky["timeout_ms"],
            &flaky["backoff"]
        ),
        (&json!(2), &json!(1500), &json!("linear")),
        "{flaky}"
    );
    let slow = &rows[keys[1]];
    assert_eq!(
        (&slow["status"], &slow["retry_attempt"], &slow["timeout_ms"]),
        (&json!("timeout"), &json!(2), &json!(1500)),
        "{slow}"
    );
    let keywords = &rows[keys[2]];
    assert_eq!(
        (
            &keywords["status"],
            &keywords["retry_max_attempts"],
            &keywords["timeout_ms"],
            &keywords["backoff"]
        ),
        (
            &json!("completed"),
            &json!(3),
            &json!(300_000),
            &json!("exponential")
        ),
        "{keywords}"
    );
    pool.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

#[tokio::test]
async fn delayed_job() {
    interop("delay", 1).await;
}

#[tokio::test]
async fn priority_order() {
    interop("priority", 1).await;
}

#[tokio::test]
async fn custom_job_id_dedupe() {
    interop("dedupe", 1).await;
}

#[tokio::test]
async fn timeout_fails_attempt() {
    interop("timeout", 1).await;
}

#[tokio::test]
async fn remove_on_complete_still_resolves() {
    interop("remove_on_complete", 2).await;
}

#[tokio::test]
async fn repeat_every_without_reenqueueing() {
    interop("repeat_every", 1).await;
}

#[tokio::test]
async fn pause_and_resume() {
    interop("pause_resume", 1).await;
}

#[tokio::test]
async fn progress_reaches_bull() {
    interop("progress", 1).await;
}

/// Security matrix row 30: a plugin's progress flood costs a few Redis calls.
#[tokio::test]
async fn a_progress_flood_is_coalesced() {
    let out = interop("progress_flood", 1).await;
    eprintln!("progress flood: {out}");
}

/// Security row 30 through the daemon and the real `bull` client: a log-fields flood
/// (1,000 lines x 32 fields x 4 KiB, 128 MiB handed to the host), a 32 MiB cursor and
/// key-value and object floods stay within the operator's budgets in Bull (the scenario
/// checks), in the `jobs` rows the daemon mirrors, and in the daemon's own memory: its
/// peak resident set grows by less than twice the guest's 64 MiB budget over the whole
/// run (before the budgets, one log-fields job took 1.77 GiB against a 256 MiB guest).
#[tokio::test]
async fn what_a_plugin_hands_the_daemon_stays_within_its_budgets() {
    const GUEST_BUDGET_KIB: u64 = 64 * 1024;
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("bounds");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .args(&[
            "--max-memory",
            &(GUEST_BUDGET_KIB * 1024).to_string(),
            "--max-kv-bytes-per-job",
            &(4 << 20).to_string(),
            "--max-object-bytes-per-job",
            &(20 << 20).to_string(),
        ])
        .name("serve with budgets")
        .start();
    let pid = daemon.pid().to_string();
    let (started_kib, _) = drowl_testkit::soak::rss_kib(&pid);
    let out = scenario("bounds", &[], &queue).await;
    let (_, peak_kib) = drowl_testkit::soak::rss_kib(&pid);
    let growth = peak_kib.saturating_sub(started_kib);
    eprintln!(
        "daemon memory: {started_kib} KiB resident once serving, peak {peak_kib} KiB (+{growth} KiB); {out}"
    );
    // The guest's own memory (up to its budget, in the daemon's address space) plus what
    // one call hands over (the 32 MiB cursor is copied once before it is refused).
    assert!(
        growth < 2 * GUEST_BUDGET_KIB,
        "the daemon's peak grew by {growth} KiB during the flood jobs"
    );

    let ids: BTreeMap<String, String> =
        serde_json::from_value(out["extra"]["ids"].clone()).expect("ids");
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    type Row = (String, String, Option<String>, i64, i64, i64);
    let rows: BTreeMap<String, Row> =
        eventually(Duration::from_secs(20), "every job's row settled", || {
            let (pool, ids) = (&pool, &ids);
            async move {
                let rows: Vec<(String, String, Option<String>, i64, i64, i64)> = sqlx::query_as(
                    "SELECT id, status, error_code, length(coalesce(output, '')), \
                            length(coalesce(error_details, '')), length(coalesce(error_message, '')) \
                       FROM jobs",
                )
                .fetch_all(pool)
                .await
                .ok()?;
                let rows: BTreeMap<_, _> = rows
                    .into_iter()
                    .map(|r| (r.0.clone(), r))
                    .collect();
                ids.values()
                    .all(|id| rows.get(id).is_some_and(|r| r.1 == "completed" || r.1 == "failed"))
                    .then_some(rows)
            }
        })
        .await;
    for (case, id) in &ids {
        let (_, status, code, output, details, message) = &rows[id];
        eprintln!(
            "{case}: {status} {code:?}, output {output} B, details {details} B, message {message} B"
        );
        // The log budget (1 MiB by default) plus the usage record.
        assert!(
            *details <= (1 << 20) + (64 << 10),
            "{case}: {details} bytes of error_details"
        );
        assert!(*output < 64 << 10, "{case}: {output} bytes of output");
        assert!(*message < 1024, "{case}: {message} bytes of error_message");
    }
    assert_eq!(rows[&ids["fieldsFailed"]].2.as_deref(), Some("trap"));
    assert!(
        rows[&ids["fieldsFailed"]].4 > 100 << 10,
        "the failed job keeps its logs, up to the budget"
    );
    assert_eq!(rows[&ids["cursor"]].2.as_deref(), Some("invalid-output"));
    let cursors: i64 =
        sqlx::query_scalar("SELECT count(*) FROM plugin_kv WHERE namespace = 'drowl-host/cursors'")
            .fetch_one(&pool)
            .await
            .expect("count stored cursors");
    assert_eq!(cursors, 0, "the refused cursor was stored");
    pool.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

#[tokio::test]
async fn follow_up_job_runs_under_a_derived_id() {
    interop_with(
        "follow_up",
        1,
        &["--allow-follow-up", "keyword_extraction:keywords"],
    )
    .await;
}

/// Security matrix row 28: a follow-up for another plugin needs the operator's grant.
#[tokio::test]
async fn follow_up_for_another_plugin_is_refused_without_a_grant() {
    interop("follow_up_refused", 1).await;
}

/// Security matrix row 28: a job that enqueues copies of itself stops at the depth limit
/// and at the lineage's budget, counted across the daemon's concurrent jobs.
#[tokio::test]
async fn a_job_that_copies_itself_is_capped_by_depth_and_lineage() {
    interop_with(
        "fanout",
        4,
        &[
            "--max-follow-up-depth",
            "2",
            "--max-lineage-follow-ups",
            "15",
        ],
    )
    .await;
}

#[tokio::test]
async fn many_jobs_with_concurrency_and_counts() {
    let out = interop("many", 8).await;
    assert_eq!(out["counts"]["completed"], 200, "{out}");
}

/// Security row 32 through the daemon and the real `bull` client: the hostile plugin's
/// attempts to get its secret out (a cursor, a follow-up, a quoted value) and NUL in its
/// fields fail as `invalid-output` or a refused follow-up, naming the field; the secret
/// is in no key of the queue (the scenario checks), no column of the `jobs` table the
/// daemon mirrors, and not in the daemon's log.
#[tokio::test]
async fn secrets_and_invalid_output_reach_neither_bull_nor_the_jobs_table() {
    const SECRET: &str = "ghp_DAEMONsecret32";
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("secrets");
    let plugins = plugin_dir();
    let settings = tempfile::NamedTempFile::new().expect("settings file");
    std::fs::write(
        settings.path(),
        json!({"hostile": {"config": {"token": SECRET}}}).to_string(),
    )
    .expect("write settings");
    let daemon = Serve::new(&queue, plugins.path())
        .arg("--plugin-config")
        .arg(settings.path().display().to_string())
        .name("serve with a secret")
        .start();
    let out = scenario("secrets", &[SECRET], &queue).await;
    let ids: BTreeMap<String, String> =
        serde_json::from_value(out["extra"]["ids"].clone()).expect("ids");

    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    type Row = (String, String, Option<String>, Option<String>);
    let rows: BTreeMap<String, (String, Option<String>, Option<String>)> =
        eventually(Duration::from_secs(20), "every job's row settled", || {
            let (pool, ids) = (&pool, &ids);
            async move {
                let rows: Vec<Row> =
                    sqlx::query_as("SELECT id, status, error_code, error_message FROM jobs")
                        .fetch_all(pool)
                        .await
                        .ok()?;
                let rows: BTreeMap<_, _> = rows
                    .into_iter()
                    .map(|(id, s, c, m)| (id, (s, c, m)))
                    .collect();
                ids.values()
                    .all(|id| rows.get(id).is_some_and(|r| r.0 == "failed"))
                    .then_some(rows)
            }
        })
        .await;
    assert_eq!(
        rows.len(),
        ids.len(),
        "no follow-up job was enqueued: {rows:?}"
    );
    for (case, id) in &ids {
        let (_, code, message) = &rows[id];
        let message = message.as_deref().unwrap_or_default();
        let (want_code, field) = match case.as_str() {
            "leak-secret-in:follow-up-name" | "leak-secret-in:follow-up-input" => {
                ("plugin-permanent", "holds one of this plugin's secrets")
            }
            "leak-secret-in:next-cursor" | "leak-secret-in:next-cursor-hex" => {
                ("invalid-output", "next-cursor")
            }
            "leak-secret-in:source" => ("invalid-output", "events[0].source"),
            "nul-in:event-type" => ("invalid-output", "events[0].event-type"),
            "nul-in:identities.metadata-json" => ("invalid-output", "identities[0].metadata-json"),
            other => panic!("a case this test does not know: {other}"),
        };
        assert_eq!(code.as_deref(), Some(want_code), "{case}: {message}");
        assert!(message.contains(field), "{case}: {message}");
    }
    // Every column of every row, as text.
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT id || type || name || status || input || coalesce(output, '') \
                || coalesce(error_message, '') || coalesce(error_code, '') \
                || coalesce(error_details, '') FROM jobs",
    )
    .fetch_all(&pool)
    .await
    .expect("dump jobs");
    for row in &dump {
        assert!(
            !row.contains(SECRET) && !row.contains(&hex),
            "the secret is in the jobs table: {row}"
        );
    }
    let log = daemon.log();
    assert!(
        !log.contains(SECRET) && !log.contains(&hex),
        "the secret reached the daemon's log"
    );
    pool.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

/// A PostgreSQL database with drowl's schema, shared by the daemons of one test.
async fn pg_pool(db: &TestDb) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .expect("connect to the test database")
}

/// [`job_row`] once the mirror has written the job's final move: the mirror writes after
/// Redis, so a row read the moment Bull reports a job finished may still be a move
/// behind (the last job of a scenario, on a loaded machine).
async fn final_job_row(pool: &sqlx::PgPool, id: &str) -> BTreeMap<&'static str, Value> {
    final_rows(&[id], |id| {
        let pool = pool.clone();
        async move { pg_meta(&pool, &id).await }
    })
    .await;
    job_row(pool, id).await
}

async fn job_row(pool: &sqlx::PgPool, id: &str) -> BTreeMap<&'static str, Value> {
    let row = sqlx::query(
        "SELECT status, type, name, plugin_id, retry_attempt, retry_max_attempts,
                retry_backoff_strategy, error_message, error_code, output, input,
                started_at IS NOT NULL AS started, completed_at IS NOT NULL AS completed,
                retry_last_at IS NOT NULL AS retried, timeout_ms,
                created_at <= started_at AS created_first
           FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap_or_else(|e| panic!("jobs row {id}: {e}"));
    let s = |k: &str| {
        row.get::<Option<String>, _>(k)
            .map_or(Value::Null, Value::from)
    };
    let i = |k: &str| Value::from(row.get::<i32, _>(k));
    let b = |k: &str| Value::from(row.get::<bool, _>(k));
    BTreeMap::from([
        ("status", s("status")),
        ("type", s("type")),
        ("name", s("name")),
        ("plugin_id", s("plugin_id")),
        ("retry_attempt", i("retry_attempt")),
        ("retry_max_attempts", i("retry_max_attempts")),
        ("backoff", s("retry_backoff_strategy")),
        ("error_message", s("error_message")),
        ("error_code", s("error_code")),
        (
            "output",
            row.get::<Option<Value>, _>("output").unwrap_or_default(),
        ),
        ("input", row.get::<Value, _>("input")),
        ("started", b("started")),
        ("completed", b("completed")),
        ("retried", b("retried")),
        ("timeout_ms", i("timeout_ms")),
        (
            "created_first",
            row.get::<Option<bool>, _>("created_first")
                .map_or(Value::Null, Value::from),
        ),
    ])
}

/// Issue #11: drowl's API links two identities by hand with the real `bull` client (its
/// payload verbatim, no options); `serve` writes the link into PostgreSQL itself, no
/// plugin involved: the ordered pair, `user_manual`, the confidence as asked.
#[tokio::test]
async fn a_link_request_from_drowl_lands_in_identity_links() {
    use drowl_host::storage::postgres::PostgresStore;
    use drowl_host::storage::{EventStore as _, IdentityRecord};
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let account = |platform: &str, user: &str| IdentityRecord {
        platform: platform.into(),
        platform_user_id: user.into(),
        platform_username: None,
        display_name: None,
        profile_url: None,
        avatar_url: None,
        metadata: json!({}),
    };
    store
        .upsert_identities(&[account("github", "1"), account("x", "2")])
        .await
        .expect("identities");
    let gh = store
        .identity_id("github", "1")
        .await
        .unwrap()
        .expect("github id");
    let x = store.identity_id("x", "2").await.unwrap().expect("x id");
    let (one, two) = if gh < x { (&gh, &x) } else { (&x, &gh) };

    let queue = unique_queue("link");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .env("DATABASE_URL", &db.url)
        .name("serve linking identities")
        .start();
    // The larger id first: stored as the ordered pair all the same.
    let out = scenario("link_identities", &[two, one], &queue).await;
    assert_eq!(
        out["extra"]["output"],
        json!({"linked": true, "identityId1": one, "identityId2": two,
               "confidence": "high", "outcome": "created"}),
        "{out}"
    );
    let pool = pg_pool(&db).await;
    let rows = sqlx::query(
        "SELECT identity_id_1, identity_id_2, confidence, link_source, confidence_score,
                is_active FROM identity_links",
    )
    .fetch_all(&pool)
    .await
    .expect("identity_links");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.get::<String, _>("identity_id_1"), *one);
    assert_eq!(r.get::<String, _>("identity_id_2"), *two);
    assert_eq!(r.get::<String, _>("confidence"), "high");
    assert_eq!(r.get::<String, _>("link_source"), "user_manual");
    assert!((r.get::<f32, _>("confidence_score") - 0.9).abs() < 1e-6);
    assert!(r.get::<bool, _>("is_active"));
    let id = out["extra"]["id"]
        .as_str()
        .map_or_else(|| out["extra"]["id"].to_string(), str::to_owned);
    let row = final_job_row(&pool, &id).await;
    assert_eq!(row["status"], "completed", "{row:?}");
    assert_eq!(row["type"], "identity_resolution");
    drop(daemon);
    obliterate(&queue).await;
}

/// Issue #11: drowl's `extract-keywords` payload verbatim against events drowl's API
/// stored itself (raw payload only, no extracted text): the GitHub push and the webhook
/// comment match on what people wrote, the tracked rows get their matches, the repository
/// description matches nothing, and a mistyped `eventId` fails at once naming the field.
#[tokio::test]
async fn keywords_are_found_in_events_drowls_api_stored() {
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let store = drowl_host::storage::postgres::PostgresStore::connect(&db.url)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let pool = pg_pool(&db).await;
    // As drowl's API writes them: its own ids, raw payloads as received, no text column.
    for (id, event_type, raw) in [
        (
            "01HAPIPUSH",
            "push",
            json!({"type": "PushEvent", "repo": {"name": "octocat/Hello-World"},
                   "payload": {"commits": [{"message": "Port the CLI to TypeScript"},
                                           {"message": "Add a react front end"}]}}),
        ),
        (
            "01HAPICOMMENT",
            "comment",
            json!({"action": "created", "comment": {"body": "Works with React 19"},
                   "repository": {"description": "TypeScript SDK"}}),
        ),
        (
            "01HAPISTAR",
            "star",
            json!({"action": "started", "repository": {"description": "TypeScript SDK"}}),
        ),
    ] {
        sqlx::query(
            "INSERT INTO events (id, source, event_type, occurred_at, raw_payload, plugin_id, \
                                 plugin_version) \
             VALUES ($1, 'github', $2, '2024-01-02T03:04:05Z', $3, 'github-plugin', '1.0.0')",
        )
        .bind(id)
        .bind(event_type)
        .bind(raw)
        .execute(&pool)
        .await
        .expect("insert an event as drowl's API does");
    }
    for (id, term) in [("kw-ts", "TypeScript"), ("kw-react", "React")] {
        sqlx::query(
            "INSERT INTO keywords (id, term, category, match_strategy) \
             VALUES ($1, $2, 'technology', 'word_boundary')",
        )
        .bind(id)
        .bind(term)
        .execute(&pool)
        .await
        .expect("insert a tracked keyword");
    }
    let queue = unique_queue("api-events");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .env("DATABASE_URL", &db.url)
        .name("serve extracting keywords")
        .start();
    let extract = |event: &str| {
        json!({"type": "keyword_extraction", "name": "extract-keywords",
               "input": {"eventId": event, "keywords": ["TypeScript", "React"]}})
        .to_string()
    };
    for event in ["01HAPIPUSH", "01HAPICOMMENT", "01HAPISTAR"] {
        let out = scenario("drowl_job", &[&extract(event)], &queue).await;
        assert!(out["extra"]["failedReason"].is_null(), "{event}: {out}");
    }
    let matches: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_id, keyword_id FROM keyword_matches ORDER BY event_id, keyword_id",
    )
    .fetch_all(&pool)
    .await
    .expect("keyword_matches");
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        matches,
        pairs(&[
            ("01HAPICOMMENT", "kw-react"),
            ("01HAPIPUSH", "kw-react"),
            ("01HAPIPUSH", "kw-ts"),
        ])
    );
    let tracked: i64 = sqlx::query_scalar("SELECT count(*) FROM keywords")
        .fetch_one(&pool)
        .await
        .expect("count keywords");
    assert_eq!(tracked, 2, "a job wrote drowl's keywords table");

    let bad = json!({"type": "keyword_extraction", "name": "extract-keywords",
                     "input": {"eventId": 42, "keywords": ["TypeScript"]}})
    .to_string();
    let out = scenario("drowl_job", &[&bad], &queue).await;
    let reason = out["extra"]["failedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("input.eventId must be a non-empty string"),
        "{out}"
    );
    assert_eq!(out["extra"]["attemptsMade"], 1, "{out}");
    drop(daemon);
    obliterate(&queue).await;
}

/// Issue #11: keyword extraction over every stored event continues across jobs. With a
/// call budget of one call (500 events) per job, a job over 1,200 events is three jobs,
/// each resuming after the last event of the one before, in the same lineage; together
/// they scan every event once and find every mention.
#[tokio::test]
async fn keyword_extraction_over_many_events_continues_across_jobs() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("continue");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--max-pages", "1"])
        .name("serve with one call per job")
        .start();
    let ingest = json!({"type": "event_ingestion", "name": "probe",
                        "input": {"pluginId": "hostile", "mode": "ok", "count": 1200}})
    .to_string();
    let out = scenario("drowl_job", &[&ingest], &queue).await;
    assert_eq!(out["extra"]["output"]["eventsStored"], 1200, "{out}");
    let extract = json!({"type": "keyword_extraction", "name": "extract-keywords",
                         "input": {"keywords": ["Rust"], "since": "2024-01-01T00:00:00Z"}})
    .to_string();
    let out = scenario("drowl_job", &[&extract], &queue).await;
    let first = &out["extra"]["output"];
    assert_eq!(first["eventsScanned"], 500, "{out}");
    assert_eq!(first["continued"], true, "{out}");
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    let outputs: Vec<Value> = eventually(Duration::from_secs(60), "the last continuation", || {
        let pool = &pool;
        async move {
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                "SELECT status, output FROM jobs WHERE name = 'extract-keywords' ORDER BY created_at",
            )
            .fetch_all(pool)
            .await
            .ok()?;
            let outputs: Vec<Value> = rows
                .iter()
                .filter(|r| r.0 == "completed")
                .filter_map(|r| serde_json::from_str(r.1.as_deref()?).ok())
                .collect();
            (outputs.len() == rows.len() && outputs.iter().any(|o| o["continuesAfter"].is_null()))
                .then_some(outputs)
        }
    })
    .await;
    let scanned: Vec<u64> = outputs
        .iter()
        .map(|o| o["eventsScanned"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(scanned, [500, 500, 200], "{outputs:?}");
    let mentions: u64 = outputs
        .iter()
        .map(|o| o["matchesByKeyword"]["Rust"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(mentions, 1200);
    // Each resumes where the one before stopped.
    assert_eq!(outputs[1]["resumedAfter"], outputs[0]["continuesAfter"]);
    assert_eq!(outputs[2]["resumedAfter"], outputs[1]["continuesAfter"]);
    pool.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

/// `GET /metrics` in Prometheus text format: jobs by type, plugin and outcome (the
/// failure's code), durations, events stored, budget violations and queue depth, after
/// jobs drowl's API enqueued with the real `bull` client; an id the API made up is
/// labelled `other`, not given a series of its own.
#[tokio::test]
async fn metrics_count_jobs_by_type_plugin_and_outcome() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("metrics");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .name("serve for metrics")
        .start();
    let probe = |mode: &str, count: u32| {
        json!({"type": "event_ingestion", "name": "probe",
               "input": {"pluginId": "hostile", "mode": mode, "count": count, "tag": mode}})
        .to_string()
    };
    for job in [
        probe("ok", 3),
        // The same three events again (counted as duplicates, not stored) and two more.
        probe("ok", 5),
        probe("bad-source", 1),
        probe("log-fields", 300),
        json!({"type": "event_ingestion", "name": "probe",
               "input": {"pluginId": "made-up-1234", "mode": "ok"}})
        .to_string(),
    ] {
        scenario("drowl_job", &[&job], &queue).await;
    }
    let (status, text) = daemon.get_text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    for line in [
        r#"drowl_jobs_started_total{job_type="event_ingestion",plugin="hostile"} 4"#,
        r#"drowl_jobs_finished_total{job_type="event_ingestion",plugin="hostile",outcome="completed"} 3"#,
        r#"drowl_jobs_finished_total{job_type="event_ingestion",plugin="hostile",outcome="invalid-output"} 1"#,
        r#"drowl_jobs_finished_total{job_type="event_ingestion",plugin="other",outcome="plugin-not-found"} 1"#,
        r#"drowl_job_duration_seconds_count{job_type="event_ingestion",plugin="hostile"} 4"#,
        r#"drowl_instantiate_seconds_count{job_type="event_ingestion",plugin="hostile"} 4"#,
        r#"drowl_events_stored_total{job_type="event_ingestion",plugin="hostile"} 6"#,
        r#"drowl_budget_violations_total{plugin="hostile",kind="log-bytes"} 1"#,
        r#"drowl_queue_jobs{state="completed"} 3"#,
        r#"drowl_queue_jobs{state="failed"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(!text.contains("made-up-1234"), "{text}");
    drop(daemon);
    obliterate(&queue).await;
}

/// Logs as JSON (`DROWL_LOG_FORMAT=json`): every line logged while a job runs, the
/// plugin's own lines and the host's, carries the job id, its type and its plugin, so an
/// operator can follow one job through a daemon's log.
#[tokio::test]
async fn log_lines_of_a_job_carry_its_id_type_and_plugin() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("json-logs");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .env("DROWL_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,drowl::plugin=info")
        .name("serve logging JSON")
        .start();
    let probe = |mode: &str| {
        json!({"type": "event_ingestion", "name": "probe",
               "input": {"pluginId": "hostile", "mode": mode, "count": 2}})
        .to_string()
    };
    let flood = scenario("drowl_job", &[&probe("log-flood")], &queue).await;
    let panics = scenario("drowl_job", &[&probe("panic")], &queue).await;
    let log = daemon.log();
    let line_with = |needle: &str| -> Value {
        let line = log
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    for (needle, out) in [("flood line 1", &flood), ("panicked on purpose", &panics)] {
        let line = line_with(needle);
        let span = &line["span"];
        assert_eq!(span["name"], "drowl.job", "{line}");
        assert_eq!(span["job"], out["extra"]["id"], "{line}");
        assert_eq!(span["job_type"], "event_ingestion", "{line}");
        assert_eq!(span["plugin"], "hostile", "{line}");
    }
    drop(daemon);
    obliterate(&queue).await;
}

/// `POST /jobs/:id/process`, drowl's development endpoint: off unless `serve` is started
/// with `--process-endpoint` (404 naming the flag); then a job delayed by an hour runs at
/// once, a failed job runs again (its attempts made kept), and a completed or unknown job
/// is refused (409, 404).
#[tokio::test]
async fn the_process_endpoint_runs_a_delayed_or_failed_job_now() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("process");
    let plugins = plugin_dir();
    let off = Serve::new(&queue, plugins.path())
        .name("serve without the process endpoint")
        .start();
    let (code, body) = off.post("/jobs/1/process").await;
    assert_eq!(code, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("--process-endpoint"),
        "{body}"
    );
    drop(off);

    let daemon = Serve::new(&queue, plugins.path())
        .arg("--process-endpoint")
        .name("serve with the process endpoint")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    let probe = |mode: &str| {
        json!({"type": "event_ingestion", "name": "probe",
               "input": {"pluginId": "hostile", "mode": mode, "count": 1, "tag": mode}})
    };
    let state = |id: String| {
        let q = &q;
        async move { q.get_job(&id).await.ok().flatten() }
    };
    let delayed = q
        .add(
            "probe",
            probe("ok"),
            drowl_bull::JobOptions::new().delay(3_600_000),
        )
        .await
        .expect("add a delayed job")
        .to_string();
    let failing = q
        .add("probe", probe("panic"), Default::default())
        .await
        .expect("add a failing job")
        .to_string();
    eventually(
        Duration::from_secs(20),
        "the panicking job failed",
        || async {
            state(failing.clone())
                .await
                .filter(|j| j.state == JobState::Failed)
        },
    )
    .await;

    let (code, body) = daemon.post(&format!("/jobs/{delayed}/process")).await;
    assert_eq!((code, &body["was"]), (202, &json!("delayed")), "{body}");
    eventually(
        Duration::from_secs(20),
        "the promoted job completed",
        || async {
            state(delayed.clone())
                .await
                .filter(|j| j.state == JobState::Completed)
        },
    )
    .await;

    let (code, body) = daemon.post(&format!("/jobs/{failing}/process")).await;
    assert_eq!((code, &body["was"]), (202, &json!("failed")), "{body}");
    let again = eventually(
        Duration::from_secs(20),
        "the retried job ran again",
        || async {
            state(failing.clone())
                .await
                .filter(|j| j.state == JobState::Failed && j.attempts_made == 2)
        },
    )
    .await;
    assert!(
        again
            .failed_reason
            .unwrap_or_default()
            .contains("panicked on purpose")
    );

    let (code, body) = daemon.post(&format!("/jobs/{delayed}/process")).await;
    assert_eq!(code, 409, "a completed job: {body}");
    let (code, body) = daemon.post("/jobs/no-such-job/process").await;
    assert_eq!(code, 404, "{body}");
    drop(daemon);
    obliterate(&queue).await;
}

/// Issue #11 and #12: a github component built against contract 0.1.0 (kept as it was
/// built) and the identity plugin (0.2.0) in one daemon on PostgreSQL, driven by the real
/// `bull` client. The 0.1.0 plugin ingests octocat's events and observes the account; an
/// `identity_resolution` job naming no identities runs the identity plugin, which links
/// it to the Zenn account drowl's API stored that points back at it with the same
/// username, and leaves an unrelated same-name account alone. The same job again writes
/// nothing.
#[tokio::test]
async fn a_0_1_0_connector_and_the_0_2_0_identity_plugin_share_one_daemon() {
    use drowl_host::storage::postgres::PostgresStore;
    use drowl_host::storage::{EventStore as _, IdentityRecord};
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let account = |platform: &str, user: &str, name: &str, metadata: Value| IdentityRecord {
        platform: platform.into(),
        platform_user_id: format!("{platform}-{user}"),
        platform_username: Some(user.into()),
        display_name: Some(name.into()),
        profile_url: Some(format!("https://{platform}.example/{user}")),
        avatar_url: None,
        metadata,
    };
    store
        .upsert_identities(&[
            account(
                "zenn",
                "octocat",
                "Octo",
                json!({"github_username": "octocat"}),
            ),
            account("x", "monalisa", "Mona Lisa Octocat", json!({})),
        ])
        .await
        .expect("identities");
    let (_, api) = fixture_server::start_with(fixture_server::Options::new(
        fixture_server::github_fixtures(),
    ))
    .await
    .expect("fixture server");
    let fixture = repo_root().join("tests/fixtures/contract-0.1.0/github_plugin.wasm");
    let plugins = plugin_dir_with(&[
        (fixture.as_path(), "github_plugin.wasm"),
        (
            Path::new(drowl_test_artifacts::IDENTITY_PLUGIN),
            "identity_plugin.wasm",
        ),
    ]);
    let settings = tempfile::NamedTempFile::new().expect("settings file");
    std::fs::write(
        settings.path(),
        json!({"github": {"config": {"api-base-url": api.base_url()},
                          "allowHosts": [api.base_url()]}})
        .to_string(),
    )
    .expect("write settings");
    let queue = unique_queue("contracts");
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--allow-network", "127.0.0.1/32", "--plugin-config"])
        .arg(settings.path().display().to_string())
        .env("DATABASE_URL", &db.url)
        .name("serve with a 0.1.0 and a 0.2.0 plugin")
        .start();
    let (_, health) = daemon.get("/").await;
    let loaded = health["plugins"].to_string();
    assert!(
        loaded.contains("github") && loaded.contains("identity"),
        "both plugins loaded: {health}"
    );
    let ingest = json!({"type": "event_ingestion", "name": "github-events",
        "input": {"pluginId": "github-plugin", "source": "github", "user": "octocat"}})
    .to_string();
    let out = scenario("drowl_job", &[&ingest], &queue).await;
    assert!(out["extra"]["failedReason"].is_null(), "{out}");
    assert_eq!(out["extra"]["output"]["eventsStored"], 77, "{out}");

    let resolve = json!({"type": "identity_resolution", "name": "resolve-identities", "input": {}})
        .to_string();
    let first = scenario("drowl_job", &[&resolve], &queue).await;
    assert!(first["extra"]["failedReason"].is_null(), "{first}");
    assert_eq!(first["extra"]["output"]["linksCreated"], 1, "{first}");
    let pool = pg_pool(&db).await;
    let octocat = store
        .identity_id("github", "583231")
        .await
        .unwrap()
        .expect("the 0.1.0 plugin observed octocat (GitHub user id 583231)");
    let zenn = store
        .identity_id("zenn", "zenn-octocat")
        .await
        .unwrap()
        .expect("zenn id");
    let rows = sqlx::query(
        "SELECT identity_id_1, identity_id_2, link_source, plugin_id, reason, is_active
           FROM identity_links",
    )
    .fetch_all(&pool)
    .await
    .expect("identity_links");
    assert_eq!(rows.len(), 1, "only the corroborated pair");
    let r = &rows[0];
    let (one, two) = if octocat < zenn {
        (&octocat, &zenn)
    } else {
        (&zenn, &octocat)
    };
    assert_eq!(r.get::<String, _>("identity_id_1"), *one);
    assert_eq!(r.get::<String, _>("identity_id_2"), *two);
    assert_eq!(r.get::<String, _>("link_source"), "plugin_heuristic");
    assert_eq!(r.get::<String, _>("plugin_id"), "identity");
    assert!(r.get::<String, _>("reason").contains("octocat"));
    assert!(r.get::<bool, _>("is_active"));

    let again = scenario("drowl_job", &[&resolve], &queue).await;
    assert_eq!(again["extra"]["output"]["linksCreated"], 0, "{again}");
    let id = |out: &Value| {
        out["extra"]["id"]
            .as_str()
            .map_or_else(|| out["extra"]["id"].to_string(), str::to_owned)
    };
    let row = final_job_row(&pool, &id(&first)).await;
    assert_eq!(row["status"], "completed", "{row:?}");
    assert_eq!(row["output"]["pluginId"], "identity", "{row:?}");
    drop(daemon);
    obliterate(&queue).await;
}

/// Issue #11: drowl's `github-events` job verbatim (`{pluginId: "github-plugin", source,
/// since}`, no target, no options) against `serve` with the github plugin configured with
/// three `targets` and pointed at the recorded GitHub API: one follow-up per target, each
/// with its own cursor, every recorded event since `since` stored once; the same job
/// again stores nothing new.
#[tokio::test]
async fn a_github_job_naming_no_target_ingests_every_configured_target() {
    const SINCE: &str = "2024-01-01T00:00:00Z";
    let _redis = RedisInUse::acquire();
    let (_, api) = fixture_server::start_with(fixture_server::Options::new(
        fixture_server::github_fixtures(),
    ))
    .await
    .expect("fixture server");
    // What the three feeds hold since SINCE, by GitHub's event id (feeds overlap).
    let mut expected = BTreeSet::new();
    for feed in [
        "users/octocat/events/public",
        "orgs/drowl-dev/events",
        "repos/octocat/Hello-World/events",
    ] {
        let dir = fixture_server::github_fixtures().join("base").join(feed);
        for page in std::fs::read_dir(&dir).expect("fixture feed") {
            let items: Vec<Value> =
                serde_json::from_slice(&std::fs::read(page.expect("page").path()).expect("read"))
                    .expect("fixture page");
            for item in items {
                if item["created_at"].as_str().is_some_and(|t| t >= SINCE) {
                    expected.insert(item["id"].as_str().expect("id").to_owned());
                }
            }
        }
    }
    let queue = unique_queue("github-targets");
    let plugins = plugin_dir_with(&[(
        Path::new(drowl_test_artifacts::GITHUB_PLUGIN),
        "github_plugin.wasm",
    )]);
    let settings = tempfile::NamedTempFile::new().expect("settings file");
    std::fs::write(
        settings.path(),
        json!({"github": {
            "config": {"api-base-url": api.base_url(),
                       "targets": "users/octocat, orgs/drowl-dev, repos/octocat/Hello-World"},
            "allowHosts": [api.base_url()]}})
        .to_string(),
    )
    .expect("write settings");
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--allow-network", "127.0.0.1/32", "--plugin-config"])
        .arg(settings.path().display().to_string())
        .concurrency(3)
        .name("serve with github targets")
        .start();
    let job = json!({"type": "event_ingestion", "name": "github-events",
                     "input": {"pluginId": "github-plugin", "source": "github", "since": SINCE}})
    .to_string();
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    for run in 0..2 {
        let out = scenario("drowl_job", &[&job], &queue).await;
        assert!(out["extra"]["failedReason"].is_null(), "run {run}: {out}");
        let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
        // The follow-ups run after the job completes: wait until all three are done.
        let follow_ups: Vec<(String, String)> = eventually(
            Duration::from_secs(60),
            "three follow-ups completed",
            || {
                let pool = &pool;
                async move {
                    let rows: Vec<(String, String, String)> = sqlx::query_as(
                        "SELECT name, status, input FROM jobs WHERE name LIKE 'github-events %'",
                    )
                    .fetch_all(pool)
                    .await
                    .ok()?;
                    (rows.len() == 3 * (run + 1) && rows.iter().all(|r| r.1 == "completed"))
                        .then(|| rows.into_iter().map(|r| (r.0, r.2)).collect())
                }
            },
        )
        .await;
        let names: BTreeSet<&str> = follow_ups.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from([
                "github-events org:drowl-dev",
                "github-events repo:octocat/Hello-World",
                "github-events user:octocat",
            ])
        );
        assert!(
            follow_ups.iter().all(|f| f.1.contains(SINCE)),
            "{follow_ups:?}"
        );
        let stored: Vec<String> = sqlx::query_scalar("SELECT external_id FROM events")
            .fetch_all(&pool)
            .await
            .expect("events");
        let stored_set: BTreeSet<String> = stored.iter().cloned().collect();
        assert_eq!(stored.len(), stored_set.len(), "an event stored twice");
        assert_eq!(stored_set, expected, "run {run}");
        let cursors: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM plugin_kv WHERE namespace = 'drowl-host/cursors'",
        )
        .fetch_one(&pool)
        .await
        .expect("cursors");
        assert_eq!(cursors, 3, "one cursor per target");
        pool.close().await;
    }
    drop(daemon);
    obliterate(&queue).await;
}

/// Serves the feed plugin's fixtures on loopback as a feed host would: each file with an
/// `ETag`, a matching `If-None-Match` answered with 304 Not Modified. Counts, per file,
/// the documents served and the 304s.
async fn feed_fixture_server() -> (
    String,
    std::sync::Arc<std::sync::Mutex<BTreeMap<String, (u32, u32)>>>,
    tokio::task::JoinHandle<()>,
) {
    use axum::http::{HeaderMap, StatusCode, header};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/feed/fixtures");
    let counts = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let served = counts.clone();
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>, headers: HeaderMap| {
                let (dir, served) = (dir.clone(), served.clone());
                async move {
                    let Ok(body) = std::fs::read(dir.join(&name)) else {
                        return (StatusCode::NOT_FOUND, HeaderMap::new(), Vec::new());
                    };
                    let etag = format!("\"{name}-1\"");
                    let mut out = HeaderMap::new();
                    out.insert(header::ETAG, etag.parse().expect("etag"));
                    let mut counts = served.lock().expect("counts");
                    let count = counts.entry(name.clone()).or_insert((0, 0));
                    if headers
                        .get(header::IF_NONE_MATCH)
                        .and_then(|v| v.to_str().ok())
                        == Some(etag.as_str())
                    {
                        count.1 += 1;
                        return (StatusCode::NOT_MODIFIED, out, Vec::new());
                    }
                    count.0 += 1;
                    let kind = if name.ends_with(".json") {
                        "application/feed+json"
                    } else {
                        "application/xml; charset=utf-8"
                    };
                    out.insert(header::CONTENT_TYPE, kind.parse().expect("type"));
                    (StatusCode::OK, out, body)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("feed server");
    });
    (base, counts, task)
}

/// The feed plugin end to end (issue #12): RSS and Atom fixtures, English and Japanese,
/// and a JSON Feed, served on loopback and ingested through `serve` by jobs enqueued with
/// the `bull` client. The first run stores exactly the fixtures' entries, Japanese intact;
/// the second sends the ETags back, gets 304s and stores nothing new; a malformed feed
/// fails at its first attempt with a message that says where it breaks.
#[tokio::test]
async fn feed_jobs_store_each_entry_once_and_a_malformed_feed_fails_saying_where() {
    let _redis = RedisInUse::acquire();
    let (base, served, server) = feed_fixture_server().await;
    let feeds = ["rss-en.xml", "atom-ja.xml", "rss-ja.xml", "feed.json"];
    let expected: BTreeSet<String> = [
        "https://dev.to/ben/shipping-webassembly-plugins-with-rust-4k2j".to_owned(),
        format!("{base}/rss-en.xml#42"),
        "https://dev.to/ben/a-post-without-an-author-9z9z".to_owned(),
        "tag:qiita.com,2005:PublicArticle/3817263".to_owned(),
        "tag:qiita.com,2005:PublicArticle/3817001".to_owned(),
        "https://zenn.dev/catnose99/articles/3f1c2e4a5b6d7e".to_owned(),
        "https://zenn.dev/hanako/articles/8a7b6c5d4e3f2a".to_owned(),
        format!("{base}/feed.json#2025-11-18-react-server-components"),
        "https://blog.example.com/2025/11/10/東京".to_owned(),
    ]
    .into_iter()
    .collect();

    let queue = unique_queue("feed");
    let plugins = plugin_dir_with(&[(
        Path::new(drowl_test_artifacts::FEED_PLUGIN),
        "feed_plugin.wasm",
    )]);
    let settings = tempfile::NamedTempFile::new().expect("settings file");
    std::fs::write(
        settings.path(),
        json!({"feed": {
            "config": {"feeds": feeds.map(|f| format!("{base}/{f}")).join(",\n")},
            "allowHosts": [base]}})
        .to_string(),
    )
    .expect("write settings");
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--allow-network", "127.0.0.1/32", "--plugin-config"])
        .arg(settings.path().display().to_string())
        .name("serve with the feed plugin")
        .start();
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let job = |name: &str| {
        json!({"type": "event_ingestion", "name": format!("feed {name}"),
               "input": {"pluginId": "feed", "url": format!("{base}/{name}")}})
        .to_string()
    };

    for run in 0..2 {
        let mut stored_now = 0;
        for name in feeds {
            let out = scenario("drowl_job", &[&job(name)], &queue).await;
            assert!(
                out["extra"]["failedReason"].is_null(),
                "run {run}, {name}: {out}"
            );
            stored_now += out["extra"]["output"]["eventsStored"]
                .as_u64()
                .expect("eventsStored");
            if run == 1 {
                assert_eq!(out["extra"]["output"]["eventsReceived"], 0, "{name}: {out}");
            }
        }
        assert_eq!(stored_now, if run == 0 { 9 } else { 0 }, "run {run}");
        let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
        let rows: Vec<(String, String, String, String, Option<String>)> =
            sqlx::query_as("SELECT external_id, source, event_type, raw_payload, text FROM events")
                .fetch_all(&pool)
                .await
                .expect("events");
        let ids: BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
        assert_eq!(rows.len(), ids.len(), "an entry stored twice");
        assert_eq!(ids, expected, "run {run}");
        assert!(
            rows.iter().all(|r| r.1 == "feed" && r.2 == "article"),
            "loopback feeds are blogs to the plugin: {rows:?}"
        );
        let row = |id: &str| rows.iter().find(|r| r.0 == id).expect(id);
        let qiita = row("tag:qiita.com,2005:PublicArticle/3817263");
        let payload: Value = serde_json::from_str(&qiita.3).expect("payload");
        assert_eq!(
            payload["title"],
            "RustでWebAssemblyコンポーネントを作る入門"
        );
        assert_eq!(
            payload["feed"]["title"],
            "Rustタグが付けられた新着記事 - Qiita"
        );
        assert_eq!(
            qiita.4.as_deref(),
            Some(
                "RustでWebAssemblyコンポーネントを作る入門\n\nはじめに\nこの記事ではRustとwasm32-wasip2でプラグインを書きます。"
            )
        );
        let zenn = row("https://zenn.dev/hanako/articles/8a7b6c5d4e3f2a");
        assert_eq!(
            zenn.4.as_deref(),
            Some(
                "非同期Rust（tokio）でRedisクライアントを書く\n\ntokio と fred で Redis を扱う方法です。"
            )
        );
        let authors: BTreeSet<(String, String, Option<String>)> =
            sqlx::query_as("SELECT platform, platform_user_id, display_name FROM identities")
                .fetch_all(&pool)
                .await
                .expect("identities")
                .into_iter()
                .collect();
        let host = base
            .trim_start_matches("http://")
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        for (user, name) in [
            ("Ben Halpern", "Ben Halpern"),
            ("花子", "花子"),
            ("yamada_taro", "yamada_taro"),
        ] {
            let key = (
                "feed".to_owned(),
                format!("{host}/{user}"),
                Some(name.to_owned()),
            );
            assert!(authors.contains(&key), "{key:?} in {authors:?}");
        }
        assert!(authors.contains(&(
            "feed".to_owned(),
            "https://blog.example.com/about".to_owned(),
            Some("Jane Doe".to_owned())
        )));
        pool.close().await;
    }
    // Every second run was a conditional request the server answered with 304.
    let counts = served.lock().expect("counts").clone();
    for name in feeds {
        assert_eq!(counts.get(name), Some(&(1, 1)), "{name}: {counts:?}");
    }

    // drowl's API naming no feed: one follow-up per configured feed, each resuming its
    // feed's cursor (so: a 304 each, nothing stored).
    let all = json!({"type": "event_ingestion", "name": "feed-entries",
                     "input": {"pluginId": "feed", "source": "feed"}})
    .to_string();
    let out = scenario("drowl_job", &[&all], &queue).await;
    assert!(out["extra"]["failedReason"].is_null(), "{out}");
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    let follow_ups: Vec<(String, String)> = eventually(
        Duration::from_secs(60),
        "a follow-up per feed completed",
        || {
            let pool = &pool;
            async move {
                let rows: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT name, status, output FROM jobs WHERE name LIKE 'feed-entries %'",
                )
                .fetch_all(pool)
                .await
                .ok()?;
                (rows.len() == feeds.len() && rows.iter().all(|r| r.1 == "completed"))
                    .then(|| rows.into_iter().map(|r| (r.0, r.2)).collect())
            }
        },
    )
    .await;
    let names: BTreeSet<String> = follow_ups.iter().map(|f| f.0.clone()).collect();
    let wanted: BTreeSet<String> = feeds
        .iter()
        .map(|f| format!("feed-entries {base}/{f}"))
        .collect();
    assert_eq!(names, wanted);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("count events");
    assert_eq!(stored, 9, "the follow-ups stored something new");
    pool.close().await;
    let counts = served.lock().expect("counts").clone();
    for name in feeds {
        assert_eq!(counts.get(name), Some(&(1, 2)), "{name}: {counts:?}");
    }

    let out = scenario(
        "drowl_job",
        &[&job("malformed.xml"), r#"{"attempts": 3, "backoff": 1000}"#],
        &queue,
    )
    .await;
    let reason = out["extra"]["failedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "{base}/malformed.xml is not well-formed XML: line 6, column"
        )) && reason.contains("titel"),
        "{out}"
    );
    assert_eq!(out["extra"]["attemptsMade"], 1, "{out}");
    drop(daemon);
    server.abort();
    obliterate(&queue).await;
}

/// The daily-metrics fixture, through the storage API (as ingestion and enrichment would
/// write it): Ann is two accounts linked by hand; Ben's two accounts were linked by a
/// plugin, a link a person then removed (see [`METRICS_FIXTURE_SQL`]), so he stays two
/// people; Dan has no identity row; one event has no actor; one event and one identity
/// fall outside 2024-01-01..2024-01-02.
async fn metrics_fixture(store: &dyn drowl_host::storage::EventStore) {
    use drowl_host::storage::{IdentityLinkRecord, IdentityRecord, KeywordMatchRecord, NewEvent};
    let account = |platform: &str, user: &str| IdentityRecord {
        platform: platform.into(),
        platform_user_id: user.into(),
        platform_username: None,
        display_name: None,
        profile_url: None,
        avatar_url: None,
        metadata: json!({}),
    };
    store
        .upsert_identities(&[
            account("github", "ann"),
            account("x", "ann"),
            account("github", "ben"),
            account("zenn", "ben"),
            account("github", "cat"),
        ])
        .await
        .expect("identities");
    let gh = store.identity_id("github", "ann").await.unwrap().unwrap();
    let x = store.identity_id("x", "ann").await.unwrap().unwrap();
    store
        .link_identities(&gh, &x, "high", "same person")
        .await
        .expect("ann's link");
    store
        .insert_identity_links(&[IdentityLinkRecord {
            a: ("github".into(), "ben".into()),
            b: ("zenn".into(), "ben".into()),
            confidence: "suggested".into(),
            link_source: "plugin_heuristic".into(),
            confidence_score: 0.4,
            reason: "same handle".into(),
            plugin_id: "github".into(),
        }])
        .await
        .expect("ben's link");
    let event =
        |n: u32, source: &str, kind: &str, at: &str, actor: Option<(&str, &str)>| NewEvent {
            id: format!("metrics-{n:02}"),
            source: source.into(),
            external_id: format!("ext-{n}"),
            event_type: kind.into(),
            occurred_at: at.parse().expect("time"),
            raw_payload: json!({"n": n}),
            storage_key: None,
            text: None,
            actor: actor.map(|(p, u)| (p.into(), u.into())),
            plugin_id: source.into(),
            plugin_version: "1.0.0".into(),
            correlation_id: None,
        };
    let events = [
        event(
            1,
            "github",
            "star",
            "2024-01-01T01:00:00Z",
            Some(("github", "ann")),
        ),
        event(2, "x", "tweet", "2024-01-01T02:00:00Z", Some(("x", "ann"))),
        event(
            3,
            "github",
            "star",
            "2024-01-01T03:00:00Z",
            Some(("github", "ben")),
        ),
        event(
            4,
            "zenn",
            "post",
            "2024-01-01T04:00:00Z",
            Some(("zenn", "ben")),
        ),
        event(
            5,
            "github",
            "star",
            "2024-01-01T05:00:00Z",
            Some(("github", "dan")),
        ),
        event(6, "github", "star", "2024-01-01T06:00:00Z", None),
        event(
            7,
            "github",
            "star",
            "2024-01-02T07:00:00Z",
            Some(("github", "ann")),
        ),
        event(
            8,
            "github",
            "fork",
            "2024-01-02T23:59:59Z",
            Some(("github", "ann")),
        ),
        event(9, "x", "tweet", "2024-01-03T00:00:00Z", Some(("x", "ann"))),
    ];
    store.insert_events(&events).await.expect("events");
    let mention = |n: usize, keyword: &str, occurrences: i64| KeywordMatchRecord {
        event_id: events[n - 1].id.clone(),
        keyword_id: keyword.into(),
        matched_text: keyword.into(),
        position: 0,
        occurrences,
        plugin_id: "keywords".into(),
    };
    store
        .insert_keyword_matches(&[
            mention(1, "kw-ts", 2),
            mention(2, "kw-ts", 1),
            mention(9, "kw-ts", 4),
            mention(7, "kw-react", 1),
            mention(8, "kw-react", 2),
        ])
        .await
        .expect("keyword matches");
}

/// What the storage API cannot say, in SQL both PostgreSQL and SQLite run: when each
/// identity was discovered, and Ben's plugin link removed by a person.
const METRICS_FIXTURE_SQL: [&str; 6] = [
    "UPDATE identities SET discovered_at = '2024-01-01T05:00:00.000000Z' \
     WHERE platform = 'github' AND platform_user_id = 'ann'",
    "UPDATE identities SET discovered_at = '2024-01-01T06:00:00.000000Z' \
     WHERE platform = 'x' AND platform_user_id = 'ann'",
    "UPDATE identities SET discovered_at = '2024-01-02T07:00:00.000000Z' \
     WHERE platform = 'github' AND platform_user_id = 'ben'",
    "UPDATE identities SET discovered_at = '2024-01-02T08:00:00.000000Z' \
     WHERE platform = 'zenn' AND platform_user_id = 'ben'",
    "UPDATE identities SET discovered_at = '2023-12-31T23:00:00.000000Z' \
     WHERE platform = 'github' AND platform_user_id = 'cat'",
    "UPDATE identity_links SET is_active = false WHERE link_source = 'plugin_heuristic'",
];

/// The fixture's rollups for 2024-01-01..2024-01-02 (UTC days), counted by hand.
fn metrics_by_hand() -> drowl_host::storage::DailyMetrics {
    use drowl_host::storage::{
        DailyEventMetric, DailyIdentityMetric, DailyKeywordMetric, DailyMetrics, DailyPeopleMetric,
    };
    let day = |d: &str| d.parse().expect("day");
    let ev = |d: &str, source: &str, kind: &str, n: i64, actors: i64| DailyEventMetric {
        day: day(d),
        source: source.into(),
        event_type: kind.into(),
        event_count: n,
        actor_count: actors,
    };
    let kw = |d: &str, keyword: &str, mentions: i64, events: i64| DailyKeywordMetric {
        day: day(d),
        keyword_id: keyword.into(),
        match_count: mentions,
        event_count: events,
    };
    let ids = |d: &str, platform: &str, n: i64| DailyIdentityMetric {
        day: day(d),
        platform: platform.into(),
        new_identities: n,
    };
    DailyMetrics {
        // 01-01 github star: events 1, 3, 5, 6 by ann, ben, dan (6 has no actor).
        events: vec![
            ev("2024-01-01", "github", "star", 4, 3),
            ev("2024-01-01", "x", "tweet", 1, 1),
            ev("2024-01-01", "zenn", "post", 1, 1),
            ev("2024-01-02", "github", "fork", 1, 1),
            ev("2024-01-02", "github", "star", 1, 1),
        ],
        // Event 9 (01-03) is outside the range.
        keywords: vec![
            kw("2024-01-01", "kw-ts", 3, 2),
            kw("2024-01-02", "kw-react", 3, 2),
        ],
        // 01-01: five accounts; ann's two are one person, ben's two are two (removed link).
        people: vec![
            DailyPeopleMetric {
                day: day("2024-01-01"),
                active_people: 4,
                active_accounts: 5,
            },
            DailyPeopleMetric {
                day: day("2024-01-02"),
                active_people: 1,
                active_accounts: 1,
            },
        ],
        identities: vec![
            ids("2024-01-01", "github", 1),
            ids("2024-01-01", "x", 1),
            ids("2024-01-02", "github", 1),
            ids("2024-01-02", "zenn", 1),
        ],
    }
}

/// The `daily-metrics` output for the fixture's range.
fn metrics_output() -> Value {
    json!({
        "startDate": "2024-01-01", "endDate": "2024-01-02", "days": 2, "utcOffset": "+00:00",
        "rows": {"metrics_daily_events": 5, "metrics_daily_keywords": 2,
                 "metrics_daily_people": 2, "metrics_daily_identities": 4},
    })
}

/// The bad inputs drowl's API might send, and the field each refusal must name.
const REFUSED_METRICS: [(&str, &str); 5] = [
    (r#"{"endDate": "2024-01-31"}"#, "`input.startDate`"),
    (
        r#"{"startDate": "2024-01-01", "endDate": 20240131}"#,
        "`input.endDate`",
    ),
    (
        r#"{"startDate": "2024-01-01", "endDate": "2024-01-32"}"#,
        "`input.endDate`",
    ),
    (
        r#"{"startDate": "2024-02-01", "endDate": "2024-01-01"}"#,
        "`input.endDate`",
    ),
    (
        r#"{"startDate": "2024-01-01", "endDate": "2024-03-01"}"#,
        "--analytics-max-days",
    ),
];

/// Runs the refusal scenario on `queue`: each fails at once, one attempt, naming its field.
async fn refused_metrics(queue: &str) {
    let inputs: Vec<Value> = REFUSED_METRICS
        .iter()
        .map(|(i, _)| serde_json::from_str(i).expect("input"))
        .collect();
    let out = scenario(
        "daily_metrics_refused",
        &[&Value::Array(inputs).to_string()],
        queue,
    )
    .await;
    for ((input, field), got) in REFUSED_METRICS
        .iter()
        .zip(out["extra"].as_array().unwrap_or_else(|| panic!("{out}")))
    {
        let reason = got["failedReason"].as_str().unwrap_or_default();
        assert!(reason.contains(field), "{input}: {reason}");
        assert!(!reason.contains('\n'), "{input}: {reason}");
    }
}

/// Issue #11: drowl's API asks for `daily-metrics` with the real `bull` client (its
/// payload verbatim); `serve` computes the rollups in PostgreSQL itself, no plugin, and
/// they match the fixture counted by hand; asking again gives the same rows; bad input
/// fails at once naming the field, without spending retries.
#[tokio::test]
async fn daily_metrics_from_drowl_are_computed_in_postgres() {
    use drowl_host::storage::postgres::PostgresStore;
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    metrics_fixture(&store).await;
    let pool = pg_pool(&db).await;
    for sql in METRICS_FIXTURE_SQL {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }

    let queue = unique_queue("metrics");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .env("DATABASE_URL", &db.url)
        .args(&["--analytics-max-days", "31"])
        .name("serve computing daily metrics")
        .start();
    let out = scenario("daily_metrics", &["2024-01-01", "2024-01-02"], &queue).await;
    assert_eq!(out["extra"]["output"], metrics_output(), "{out}");
    // Read back with SQL of its own, not the store's reader.
    let rows = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .fetch_all(&pool)
                .await
                .expect(sql)
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.try_get::<String, _>(i)
                                .map(Value::from)
                                .or_else(|_| r.try_get::<i64, _>(i).map(Value::from))
                                .expect("text or bigint")
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        }
    };
    let tables = || async {
        (
            rows(
                "SELECT day::text, source, event_type, event_count, actor_count \
                  FROM metrics_daily_events ORDER BY 1, 2, 3",
            )
            .await,
            rows(
                "SELECT day::text, keyword_id, match_count, event_count \
                  FROM metrics_daily_keywords ORDER BY 1, 2",
            )
            .await,
            rows(
                "SELECT day::text, active_people, active_accounts \
                  FROM metrics_daily_people ORDER BY 1",
            )
            .await,
            rows(
                "SELECT day::text, platform, new_identities \
                  FROM metrics_daily_identities ORDER BY 1, 2",
            )
            .await,
        )
    };
    let want = metrics_by_hand();
    let first = tables().await;
    let day = |d: &chrono::NaiveDate| json!(d.to_string());
    let by_hand = (
        want.events
            .iter()
            .map(|r| {
                vec![
                    day(&r.day),
                    json!(r.source),
                    json!(r.event_type),
                    json!(r.event_count),
                    json!(r.actor_count),
                ]
            })
            .collect::<Vec<_>>(),
        want.keywords
            .iter()
            .map(|r| {
                vec![
                    day(&r.day),
                    json!(r.keyword_id),
                    json!(r.match_count),
                    json!(r.event_count),
                ]
            })
            .collect::<Vec<_>>(),
        want.people
            .iter()
            .map(|r| {
                vec![
                    day(&r.day),
                    json!(r.active_people),
                    json!(r.active_accounts),
                ]
            })
            .collect::<Vec<_>>(),
        want.identities
            .iter()
            .map(|r| vec![day(&r.day), json!(r.platform), json!(r.new_identities)])
            .collect::<Vec<_>>(),
    );
    assert_eq!(first, by_hand);
    let id = out["extra"]["id"]
        .as_str()
        .map_or_else(|| out["extra"]["id"].to_string(), str::to_owned);
    let row = final_job_row(&pool, &id).await;
    assert_eq!(row["status"], "completed", "{row:?}");
    assert_eq!(row["type"], "analytics");

    // Asking again (drowl's scheduler re-running the range) gives the same rows.
    let again = scenario("daily_metrics", &["2024-01-01", "2024-01-02"], &queue).await;
    assert_eq!(again["extra"]["output"], metrics_output(), "{again}");
    assert_eq!(tables().await, first);

    refused_metrics(&queue).await;
    drop(daemon);
    obliterate(&queue).await;
}

/// The same job on embedded storage (SQLite in the daemon's data directory): the same
/// rows as counted by hand.
#[tokio::test]
async fn daily_metrics_from_drowl_are_computed_on_embedded_storage() {
    use drowl_host::storage::EventStore as _;
    use drowl_host::storage::sqlite::SqliteStore;
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("metrics-lite");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--analytics-max-days", "31"])
        .name("serve computing daily metrics on SQLite")
        .start();
    let store = SqliteStore::open(&daemon.data_dir().join("drowl.db"))
        .await
        .expect("the daemon's database");
    metrics_fixture(&store).await;
    for sql in METRICS_FIXTURE_SQL {
        sqlx::query(sql)
            .execute(store.write_pool())
            .await
            .expect(sql);
    }
    let out = scenario("daily_metrics", &["2024-01-01", "2024-01-02"], &queue).await;
    assert_eq!(out["extra"]["output"], metrics_output(), "{out}");
    let first = "2024-01-01".parse().unwrap();
    let last = "2024-01-02".parse().unwrap();
    assert_eq!(
        store.daily_metrics(first, last).await.expect("rows"),
        metrics_by_hand()
    );
    refused_metrics(&queue).await;
    store.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

/// The `jobs` table follows each job: completed with output, failed after its retries,
/// timed out, failed at once, completed after a retry; and `enqueue` / `jobs` work on the
/// same queue.
#[tokio::test]
async fn jobs_table_mirror_in_postgres() {
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let queue = unique_queue("mirror");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .concurrency(2)
        .args(&["--migrate", "--timeout-ms", "2000"])
        .env("DATABASE_URL", &db.url)
        .name("serve with postgres")
        .start();
    let out = scenario("mirror", &[], &queue).await;
    let ids = &out["extra"];
    let id = |k: &str| {
        ids[k]
            .as_str()
            .map_or_else(|| ids[k].to_string(), str::to_owned)
    };
    let pool = pg_pool(&db).await;

    let ok = final_job_row(&pool, &id("ok")).await;
    assert_eq!(ok["status"], "completed", "{ok:?}");
    assert_eq!(ok["type"], "event_ingestion");
    assert_eq!(ok["name"], "probe-ok");
    assert_eq!(ok["plugin_id"], "hostile");
    assert_eq!(ok["retry_attempt"], 0);
    assert_eq!(ok["retry_max_attempts"], 3);
    assert_eq!(ok["output"]["eventsStored"], 1, "{ok:?}");
    assert_eq!(ok["input"]["mode"], "ok");
    assert_eq!(
        (&ok["started"], &ok["completed"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(ok["error_message"], Value::Null);
    assert_eq!(ok["created_first"], true, "created_at is the enqueue time");

    let flaky = final_job_row(&pool, &id("flaky")).await;
    assert_eq!(flaky["status"], "failed", "{flaky:?}");
    assert_eq!(flaky["retry_attempt"], 2);
    assert_eq!(flaky["retry_max_attempts"], 2);
    assert_eq!(
        flaky["error_message"],
        "plugin error (Retryable): flaky attempt 2"
    );
    assert_eq!(flaky["retried"], true);
    assert_eq!(flaky["completed"], true);

    let slow = final_job_row(&pool, &id("slow")).await;
    assert_eq!(slow["status"], "timeout", "{slow:?}");
    assert_eq!(slow["retry_attempt"], 1);
    assert_eq!(slow["timeout_ms"], 300);
    assert_eq!(
        slow["error_message"],
        "Promise timed out after 300 milliseconds"
    );

    let panics = final_job_row(&pool, &id("panics")).await;
    assert_eq!(panics["status"], "failed", "{panics:?}");
    assert_eq!(panics["retry_attempt"], 1, "a trap is not retried");
    assert_eq!(panics["retry_max_attempts"], 3);
    assert_eq!(panics["error_code"], "trap");

    // The plugin's own deadline (--timeout-ms 2000) is a timeout too, retried like any.
    let overran = final_job_row(&pool, &id("overran")).await;
    assert_eq!(overran["status"], "timeout", "{overran:?}");
    assert_eq!(overran["error_code"], "timeout");
    assert_eq!(overran["retry_attempt"], 2);

    let recovers = final_job_row(&pool, &id("recovers")).await;
    assert_eq!(recovers["status"], "completed", "{recovers:?}");
    assert_eq!(recovers["retry_attempt"], 1);
    assert_eq!(recovers["backoff"], "linear");
    assert_eq!(recovers["error_message"], Value::Null);

    // The operator commands, on the same queue: enqueue a job file, watch it complete.
    let dir = tempfile::tempdir().expect("tempdir");
    let job_file = dir.path().join("job.json");
    std::fs::write(
        &job_file,
        json!({"type": "event_ingestion", "name": "from-cli",
               "input": {"pluginId": "hostile", "mode": "ok", "count": 1, "tag": "cli-"}})
        .to_string(),
    )
    .expect("job file");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"))
            .args(args)
            .args(["--queue", &queue, "--redis-url", REDIS_URL])
            .env_remove("REDIS_URL")
            .env_remove("DROWL_QUEUE")
            .output()
            .expect("run drowl-host")
    };
    let added = cli(&[
        "enqueue",
        "--job",
        job_file.to_str().expect("utf-8 path"),
        "--opts",
        r#"{"attempts":2,"backoff":{"type":"exponential","delay":100}}"#,
    ]);
    assert_success("drowl-host enqueue", &added);
    let added: Value = serde_json::from_slice(&added.stdout).expect("enqueue prints JSON");
    let cli_id = added["id"].as_str().expect("id").to_owned();
    let state = eventually(
        Duration::from_secs(15),
        "the enqueued job completes",
        || {
            let out = cli(&["jobs", &cli_id]);
            async move {
                let v: Value = serde_json::from_slice(&out.stdout).ok()?;
                (v["state"] == "completed").then_some(v)
            }
        },
    )
    .await;
    assert_eq!(state["returnvalue"]["eventsStored"], 1, "{state}");
    let row = final_job_row(&pool, &cli_id).await;
    assert_eq!(row["status"], "completed");
    assert_eq!(row["name"], "from-cli");
    let counts = cli(&["jobs"]);
    assert_success("drowl-host jobs", &counts);
    let counts: Value = serde_json::from_slice(&counts.stdout).expect("jobs prints JSON");
    assert_eq!(counts["counts"]["completed"], 3, "{counts}");
    assert_eq!(counts["counts"]["failed"], 4, "{counts}");
    assert_eq!(counts["counts"]["active"], 0, "{counts}");

    // Events: the ok job's one and the CLI job's one, each stored once.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("count events");
    assert_eq!(events, 2);
    drop(daemon);
    pool.close().await;
    obliterate(&queue).await;
}

/// SIGKILL one of three daemons while 1,000 jobs run: the others recover its jobs (stalled
/// check), every job completes exactly once (one `completed` event per job, one completed
/// row), and the events it stored are exactly one per job (idempotent writes).
#[tokio::test]
async fn sigkill_one_of_three_daemons_during_1000_jobs() {
    let _redis = RedisInUse::acquire();
    const JOBS: usize = 1000;
    let db = TestDb::create().await;
    let queue = unique_queue("sigkill");
    let plugins = plugin_dir();
    // Short locks so recovery takes seconds: serve raises the lock to the plugin deadline
    // plus half of it (1.5 s here), so the 2 s asked for stands.
    let serve = |n: usize| {
        Serve::new(&queue, plugins.path())
            .concurrency(4)
            .args(&[
                "--lock-duration-ms",
                "2000",
                "--stalled-interval-ms",
                "1000",
                "--timeout-ms",
                "1000",
            ])
            .env("DATABASE_URL", &db.url)
            .name(&format!("daemon {n}"))
    };
    // The first applies the migrations before the others start.
    let first = serve(1).arg("--migrate").start();
    let mut victim = serve(2).start();
    let third = serve(3).start();
    let pool = pg_pool(&db).await;

    let run_tag = format!("{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let watcher = {
        let mut cmd = node_command(
            "daemon_scenarios.js",
            &["add_and_watch", &JOBS.to_string(), "120000"],
            &queue,
        );
        cmd.env("RUN_TAG", &run_tag);
        tokio::task::spawn_blocking(move || cmd.output().expect("run node"))
    };

    // Kill daemon 2 once a quarter of the jobs are done and it is running some.
    let started = Instant::now();
    eventually(
        Duration::from_secs(60),
        "a quarter of the jobs done",
        || {
            let pool = pool.clone();
            async move {
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'completed'")
                        .fetch_one(&pool)
                        .await
                        .ok()?;
                (n >= (JOBS / 4) as i64).then_some(())
            }
        },
    )
    .await;
    let (_, status) = victim.get("/").await;
    let in_flight = status["activeJobs"]
        .as_array()
        .map_or(0, std::vec::Vec::len);
    victim.signal("KILL");
    assert!(victim.wait_for(Duration::from_secs(5)).is_some());
    let done_by_victim = status["completed"].as_u64().unwrap_or(0);
    eprintln!(
        "killed daemon 2 after {:?}, with {in_flight} jobs running and {done_by_victim} completed",
        started.elapsed()
    );

    let out = watcher.await.expect("watcher task");
    assert_success("add_and_watch", &out);
    let report = last_json_line(&out);
    let elapsed = started.elapsed();
    let ids: Vec<String> = report["extra"]["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), JOBS);
    let completed = &report["extra"]["completed"];
    let twice: Vec<&String> = ids
        .iter()
        .filter(|id| completed[id.as_str()] != 1)
        .collect();
    assert!(
        twice.is_empty(),
        "jobs without exactly one completed event: {twice:?}"
    );
    assert_eq!(
        report["extra"]["failed"],
        json!({}),
        "no job may fail: {report}"
    );
    assert_eq!(report["counts"]["completed"], JOBS, "{report}");
    assert_eq!(report["counts"]["active"], 0, "{report}");

    // Recovered jobs: the stalled check moved the victim's running jobs back to wait.
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    let mut recovered = 0;
    for id in &ids {
        let rec = q.get_job(id).await.expect("get job").expect("job kept");
        assert_eq!(rec.state, JobState::Completed);
        assert_eq!(rec.attempts_made, 0, "job {id} failed an attempt");
        if rec.stalled_counter.unwrap_or(0) > 0 {
            recovered += 1;
        }
    }
    eprintln!(
        "{JOBS} jobs on 3 daemons (one SIGKILLed) in {elapsed:?}; {recovered} recovered by the stalled check"
    );
    if in_flight > 0 {
        assert!(
            recovered > 0,
            "the victim ran {in_flight} jobs, none was recovered"
        );
    }

    // PostgreSQL: one completed row per job, and exactly one event per job. A job the
    // victim finished in Redis but had not yet mirrored is caught up by the others'
    // reconciliation (lock + 2 stalled intervals later), hence "eventually".
    let settled = Instant::now();
    let rows: Vec<(String, String)> =
        eventually(Duration::from_secs(20), "every jobs row completed", || {
            let pool = pool.clone();
            async move {
                let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM jobs")
                    .fetch_all(&pool)
                    .await
                    .ok()?;
                // Bull records a completion before the daemon's writer mirrors it, so
                // wait for every row, not just for the rows present to be completed.
                (rows.len() >= JOBS && rows.iter().all(|(_, s)| s == "completed")).then_some(rows)
            }
        })
        .await;
    eprintln!(
        "jobs table settled {:?} after the last completion",
        settled.elapsed()
    );
    assert_eq!(rows.len(), JOBS);
    let row_ids: BTreeSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(row_ids, ids.iter().map(String::as_str).collect());
    let events: Vec<String> =
        sqlx::query_scalar("SELECT raw_payload->>'id' FROM events ORDER BY 1")
            .fetch_all(&pool)
            .await
            .expect("events");
    let expected: BTreeSet<String> = (0..JOBS).map(|i| format!("{run_tag}{i}-p0-e0")).collect();
    assert_eq!(events.len(), JOBS, "one stored event per job");
    assert_eq!(events.into_iter().collect::<BTreeSet<_>>(), expected);

    drop((first, third));
    pool.close().await;
    obliterate(&queue).await;
}

/// A job whose worker dies twice is failed by the stalled check ("job stalled more than
/// allowable limit", Bull's maxStalledCount 1). No worker's observer sees that with the
/// job's data, so the row the second worker left `running` is settled by reconciliation.
#[tokio::test]
async fn a_job_stalled_twice_fails_in_bull_and_in_the_jobs_table() {
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let queue = unique_queue("stalled-twice");
    let plugins = plugin_dir();
    // Deadline 2 s, so the lock is 3 s; the job sleeps 1.8 s and is killed before it ends.
    let serve = |name: &str| {
        Serve::new(&queue, plugins.path())
            .args(&[
                "--lock-duration-ms",
                "1000",
                "--stalled-interval-ms",
                "1000",
                "--timeout-ms",
                "2000",
            ])
            .env("DATABASE_URL", &db.url)
            .name(name)
    };
    let take_and_kill = |mut d: Daemon| async move {
        eventually(Duration::from_secs(20), "the daemon runs the job", || {
            let d = &d;
            async move {
                let (_, s) = d.get("/").await;
                (s["activeJobs"].as_array().map_or(0, Vec::len) == 1).then_some(())
            }
        })
        .await;
        d.signal("KILL");
        assert!(d.wait_for(Duration::from_secs(5)).is_some());
    };
    let a = serve("daemon A").arg("--migrate").start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    let id = q
        .add(
            "sleep",
            json!({"type": "event_ingestion", "name": "sleep",
                   "input": {"pluginId": "hostile", "mode": "sleep", "ms": 1800}}),
            drowl_bull::JobOptions::new().attempts(3),
        )
        .await
        .expect("add");
    take_and_kill(a).await;
    // B recovers it (stalled once) and takes it; it dies too.
    take_and_kill(serve("daemon B").start()).await;
    let c = serve("daemon C").start();
    let rec = eventually(Duration::from_secs(20), "Bull fails the job", || {
        let (q, id) = (&q, &id);
        async move {
            let rec = q.get_job(id.as_str()).await.ok()??;
            (rec.state == JobState::Failed).then_some(rec)
        }
    })
    .await;
    assert_eq!(
        rec.failed_reason.as_deref(),
        Some("job stalled more than allowable limit")
    );
    assert_eq!(rec.stalled_counter, Some(2));
    assert_eq!(
        rec.attempts_made, 0,
        "stalls are not attempts, and are not retried"
    );
    let pool = pg_pool(&db).await;
    let row = eventually(Duration::from_secs(20), "the row settles", || {
        let (pool, id) = (&pool, &id);
        async move {
            let row = job_row(pool, id.as_str()).await;
            (row["status"] != "running").then_some(row)
        }
    })
    .await;
    assert_eq!(row["status"], "failed", "{row:?}");
    assert_eq!(row["error_code"], "stalled");
    assert_eq!(
        row["error_message"],
        "job stalled more than allowable limit"
    );
    assert_eq!(row["completed"], true);
    drop(c);
    pool.close().await;
    obliterate(&queue).await;
}

/// SIGTERM with jobs in flight: the daemon stops taking jobs, lets the short ones finish
/// within the grace period, releases the long ones at its end (not after a lock expiry:
/// the lock is 90 s here) so another daemon completes them at once, and exits 0.
#[tokio::test]
async fn sigterm_finishes_short_jobs_and_releases_the_rest() {
    let _redis = RedisInUse::acquire();
    const GRACE_MS: u64 = 1500;
    let queue = unique_queue("sigterm");
    let plugins = plugin_dir();
    let mut a = Serve::new(&queue, plugins.path())
        .concurrency(4)
        .args(&["--shutdown-grace-ms", &GRACE_MS.to_string()])
        .name("daemon A")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    let sleep_job = |ms: u64| {
        json!({"type": "event_ingestion", "name": format!("sleep-{ms}"),
               "input": {"pluginId": "hostile", "mode": "sleep", "ms": ms}})
    };
    let mut short = Vec::new();
    let mut long = Vec::new();
    for _ in 0..2 {
        short.push(
            q.add("short", sleep_job(700), Default::default())
                .await
                .expect("add"),
        );
        long.push(
            q.add("long", sleep_job(4000), Default::default())
                .await
                .expect("add"),
        );
    }
    eventually(Duration::from_secs(10), "A runs all four jobs", || {
        let a = &a;
        async move {
            let (_, s) = a.get("/").await;
            (s["activeJobs"].as_array().map_or(0, Vec::len) == 4).then_some(())
        }
    })
    .await;
    let b = Serve::new(&queue, plugins.path())
        .concurrency(4)
        .name("daemon B")
        .start();

    let t0 = now_ms();
    let signalled = Instant::now();
    a.signal("TERM");
    let status = a
        .wait_for(Duration::from_millis(GRACE_MS + 3000))
        .unwrap_or_else(|| panic!("A still running {GRACE_MS} ms + 3 s after SIGTERM"));
    let exited_after = signalled.elapsed();
    assert!(status.success(), "A exited with {status}:\n{}", a.log());
    assert!(
        a.log().contains("released unfinished job"),
        "A did not release its long jobs:\n{}",
        a.log()
    );

    for id in short.iter().chain(&long) {
        eventually(Duration::from_secs(15), "every job completes", || {
            let q = &q;
            async move {
                let rec = q.get_job(id.as_str()).await.ok()??;
                (rec.state == JobState::Completed).then_some(())
            }
        })
        .await;
    }
    for id in &short {
        let rec = q.get_job(id.as_str()).await.expect("get").expect("job");
        let finished = rec.finished_on.expect("finishedOn");
        assert!(
            finished < t0 + GRACE_MS as i64,
            "short job {id} finished {} ms after SIGTERM, past the grace period",
            finished - t0
        );
        assert_eq!(rec.attempts_made, 0);
    }
    for id in &long {
        let rec = q.get_job(id.as_str()).await.expect("get").expect("job");
        let restarted = rec.processed_on.expect("processedOn") - t0;
        assert!(
            restarted >= GRACE_MS as i64 - 100 && restarted < GRACE_MS as i64 + 1000,
            "long job {id} restarted {restarted} ms after SIGTERM: released at the end of the grace period, taken at once"
        );
        assert_eq!(rec.attempts_made, 0, "a release is not a failed attempt");
        assert_eq!(
            rec.stalled_counter, None,
            "released, not recovered as stalled"
        );
    }
    let (_, status_b) = b.get("/").await;
    assert_eq!(
        status_b["completed"], 2,
        "B completed the long jobs: {status_b}"
    );
    eprintln!("A exited {exited_after:?} after SIGTERM (grace {GRACE_MS} ms)");
    drop(b);
    obliterate(&queue).await;
}

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `--type-limit event_ingestion=1` at concurrency 3: ingestion jobs run one at a time in
/// this daemon; the ones turned away go back to `delayed` without using an attempt, and a
/// job of another type is not held up behind them.
#[tokio::test]
async fn type_limits_hold_their_type_without_blocking_others() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("type-limit");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .concurrency(3)
        .args(&["--type-limit", "event_ingestion=1"])
        .name("serve with a type limit")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    let sleep = |who: &str| {
        json!({"type": "event_ingestion", "name": who,
               "input": {"pluginId": "hostile", "mode": "sleep", "ms": 2000, "who": who}})
    };
    let mut ingest = Vec::new();
    for who in ["a", "b", "c"] {
        ingest.push(
            q.add(who, sleep(who), Default::default())
                .await
                .expect("add"),
        );
    }
    // Watch the status page: never more than one ingestion job running here.
    let watch = {
        let addr = daemon.addr();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut most = 0;
            let end = Instant::now() + Duration::from_secs(8);
            while Instant::now() < end {
                if let Ok(r) = client.get(format!("http://{addr}/")).send().await
                    && let Ok(body) = r.bytes().await
                    && let Ok(s) = serde_json::from_slice::<Value>(&body)
                {
                    let running = s["activeJobs"].as_array().map_or(0, |a| {
                        a.iter()
                            .filter(|j| j["jobType"] == "event_ingestion")
                            .count()
                    });
                    most = most.max(running);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            most
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = q
        .add(
            "extract",
            json!({"type": "keyword_extraction", "name": "extract",
                   "input": {"source": "test", "keywords": ["Rust"]}}),
            Default::default(),
        )
        .await
        .expect("add other");
    let added = Instant::now();
    let rec = finished(&q, other.as_str(), Duration::from_secs(5)).await;
    assert_eq!(rec.state, JobState::Completed, "{:?}", rec.failed_reason);
    // No keyword is tracked in this daemon's store: the inline term is reported, not added.
    let out = rec.returnvalue.clone().unwrap_or_default();
    assert_eq!(
        out["unknownKeywords"],
        json!([{"term": "Rust", "matches": 0}]),
        "{out}"
    );
    assert!(
        added.elapsed() < Duration::from_millis(1000),
        "a keyword job waited {:?} behind the limited ingestion jobs",
        added.elapsed()
    );
    for id in &ingest {
        let rec = finished(&q, id.as_str(), Duration::from_secs(20)).await;
        assert_eq!(
            rec.state,
            JobState::Completed,
            "{id}: {:?}",
            rec.failed_reason
        );
        assert_eq!(
            rec.attempts_made, 0,
            "{id}: waiting for the limit used an attempt"
        );
    }
    let most = watch.await.expect("watcher");
    assert_eq!(most, 1, "ingestion jobs running at once, with a limit of 1");
    let (_, status) = daemon.get("/").await;
    assert!(
        status["postponed"].as_u64().unwrap_or(0) >= 1,
        "jobs over the limit are given back: {status}"
    );
    drop(daemon);
    obliterate(&queue).await;
}

/// `--rate-limit 2/500`: six no-op jobs added at once start at most two per half second,
/// and all complete on their first attempt.
#[tokio::test]
async fn rate_limit_spreads_job_starts() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("rate-limit");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .concurrency(4)
        .args(&["--rate-limit", "2/500"])
        .name("serve with a rate limit")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    let mut ids = Vec::new();
    for i in 0..6 {
        let job = json!({"type": "event_ingestion", "name": format!("ok-{i}"),
                         "input": {"pluginId": "hostile", "mode": "ok", "count": 0, "tag": format!("rl{i}")}});
        ids.push(q.add("ok", job, Default::default()).await.expect("add"));
    }
    let mut started = Vec::new();
    for id in &ids {
        let rec = finished(&q, id.as_str(), Duration::from_secs(15)).await;
        assert_eq!(
            rec.state,
            JobState::Completed,
            "{id}: {:?}",
            rec.failed_reason
        );
        assert_eq!(rec.attempts_made, 0, "{id}");
        started.push(rec.processed_on.expect("processedOn"));
    }
    started.sort_unstable();
    for w in started.windows(3) {
        assert!(
            w[2] - w[0] >= 450,
            "3 jobs started within {} ms: {started:?}",
            w[2] - w[0]
        );
    }
    drop(daemon);
    obliterate(&queue).await;
}

// ---- Security matrix row 29: a plugin is who the operator installed it as ----

/// A plugin config file holding `settings`.
fn plugin_config(settings: &Value) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("plugin config file");
    std::fs::write(f.path(), settings.to_string()).expect("write plugin config");
    f
}

/// Two files that would be one plugin (`hostile.wasm` and `hostile-plugin.wasm`, which
/// drowl's API addresses alike) stop the start with both files named, instead of the first
/// one alphabetically serving as `hostile`.
#[tokio::test]
async fn two_files_for_one_plugin_stop_the_start_with_both_named() {
    let hostile = std::path::PathBuf::from(drowl_test_artifacts::HOSTILE_PLUGIN);
    let plugins = plugin_dir_with(&[
        (&hostile, "hostile.wasm"),
        (&hostile, "hostile-plugin.wasm"),
    ]);
    let (status, log) = Serve::new(&unique_queue("dup-id"), plugins.path())
        .name("serve with two hostiles")
        .refused();
    assert_eq!(status.code(), Some(2), "{log}");
    let line = log
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(
        line.contains("hostile.wasm")
            && line.contains("hostile-plugin.wasm")
            && line.contains("would both be plugin `hostile`"),
        "{line}"
    );
}

/// A component placed as `github.wasm` whose manifest declares `hostile` is not installed
/// as `github` and never sees github's settings: the daemon refuses to start, naming the
/// file, the id it declares and the id it was installed as, and how to fix it.
#[tokio::test]
async fn a_component_named_for_another_plugin_is_refused() {
    const TOKEN: &str = "ghp_row29GitHubsOwnToken";
    let hostile = std::path::PathBuf::from(drowl_test_artifacts::HOSTILE_PLUGIN);
    let keywords = std::path::PathBuf::from(drowl_test_artifacts::KEYWORDS_PLUGIN);
    let plugins = plugin_dir_with(&[(&hostile, "github.wasm"), (&keywords, "keywords.wasm")]);
    let config = plugin_config(&json!({"github": {"config": {"token": "${ROW29_GITHUB_TOKEN}"}}}));
    let (status, log) = Serve::new(&unique_queue("impostor"), plugins.path())
        .arg("--plugin-config")
        .arg(config.path().display().to_string())
        .env("ROW29_GITHUB_TOKEN", TOKEN)
        .name("serve with an impostor")
        .refused();
    assert_eq!(status.code(), Some(2), "{log}");
    let line = log
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(
        line.contains("github.wasm is installed as `github` (from its file name), but its manifest declares `hostile`")
            && line.contains("rename it to hostile.wasm"),
        "{line}"
    );
    assert!(!log.contains(TOKEN), "{log}");
}

/// A config value the operator supplies from the environment (`${VAR}`) is redacted from
/// Bull's `failedReason` (read with the real bull client) and from the daemon's state,
/// although the hostile plugin's manifest declares it a plain string and the plugin puts
/// it in its error and its log.
#[tokio::test]
async fn a_plain_value_from_the_environment_never_reaches_bull() {
    const LABEL: &str = "row29-plain-but-secret-value";
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("leak-config");
    let plugins = plugin_dir();
    let config = plugin_config(&json!({"hostile": {"config": {"label": "${ROW29_LABEL}"}}}));
    let daemon = Serve::new(&queue, plugins.path())
        .arg("--plugin-config")
        .arg(config.path().display().to_string())
        .env("ROW29_LABEL", LABEL)
        .name("serve with a label from the environment")
        .start();
    let out = scenario("leak_config", &[LABEL], &queue).await;
    assert!(
        out["extra"]["failedReason"]
            .as_str()
            .is_some_and(|r| r.contains("[REDACTED]")),
        "{out}"
    );
    // The `jobs` table (SQLite and its WAL, in the data dir) keeps the redacted reason,
    // never the value: read once the mirror has written the failure.
    let data = daemon.data_dir();
    let state = || {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(&data).expect("data dir").flatten() {
            if entry.path().is_file() {
                all.extend(std::fs::read(entry.path()).unwrap_or_default());
            }
        }
        all
    };
    let holds =
        |all: &[u8], needle: &str| all.windows(needle.len()).any(|w| w == needle.as_bytes());
    let all = eventually(
        Duration::from_secs(15),
        "the failure in the jobs table",
        || {
            let all = state();
            std::future::ready(holds(&all, "failing with label [REDACTED]").then_some(all))
        },
    )
    .await;
    assert!(!holds(&all, LABEL), "the data dir holds the value");
    drop(daemon);
    obliterate(&queue).await;
}

/// Issue 13: a daemon started with nothing but a settings file (`serve --config-file`)
/// takes its queue, plugins directory, concurrency, listen address and plugin config from
/// the file: it serves the file's queue, reports the file's concurrency, and a `${VAR}`
/// config value from the file reaches the plugin and is redacted from Bull's
/// `failedReason` as a secret (read with the real bull client).
#[tokio::test]
async fn a_daemon_started_with_only_a_settings_file_follows_it() {
    const LABEL: &str = "issue13-label-from-the-settings-file";
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("settings-file");
    let plugins = plugin_dir();
    let dir = tempfile::tempdir().expect("settings dir");
    let file = dir.path().join("drowl.toml");
    std::fs::write(
        &file,
        format!(
            r#"plugins_dir = {plugins:?}
[queue]
name = "{queue}"
concurrency = 3
[http]
host = "127.0.0.1"
port = 0
[plugins.hostile]
config = {{ label = "${{ISSUE13_LABEL}}" }}
"#,
            plugins = plugins.path().display().to_string(),
        ),
    )
    .expect("write settings");
    // `Serve::new`'s queue and plugins are not passed: the file's are used.
    let daemon = Serve::new("not-this-queue", Path::new("/nonexistent"))
        .config_file(&file)
        .env("ISSUE13_LABEL", LABEL)
        .name("serve from a settings file")
        .start();
    assert!(
        daemon
            .log()
            .contains(&format!("serving queue {queue} (2 plugins")),
        "{}",
        daemon.log()
    );
    let (code, status) = daemon.get("/").await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["queue"], json!(queue), "{status}");
    assert_eq!(status["concurrency"], json!(3), "{status}");
    assert_eq!(
        status["plugins"],
        json!(["hostile", "keywords"]),
        "{status}"
    );
    assert!(daemon.addr().ip().is_loopback(), "{}", daemon.addr());
    let out = scenario("leak_config", &[LABEL], &queue).await;
    assert!(
        out["extra"]["failedReason"]
            .as_str()
            .is_some_and(|r| r.contains("failing with label [REDACTED]")),
        "{out}"
    );
    assert!(!daemon.log().contains(LABEL), "{}", daemon.log());
    drop(daemon);
    obliterate(&queue).await;

    // A typo in the file stops the start, naming the file, the line and the key.
    std::fs::write(&file, "[queue]\nconcurency = 3\n").expect("write settings");
    let (status, log) = Serve::new(&queue, plugins.path())
        .config_file(&file)
        .name("serve from a settings file with a typo")
        .refused();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains(&format!(
            "error: {}:2: queue.concurency: unknown key; known keys: name, prefix, concurrency,",
            file.display()
        )),
        "{log}"
    );
}

/// Issue 13: `enqueue`, `jobs` and `schedules` read the queue (and the schedules) from the
/// same settings file as `serve`, and a flag still wins over it.
#[tokio::test]
async fn the_queue_commands_read_the_settings_file() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("settings-cmds");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("drowl.toml");
    std::fs::write(
        &file,
        format!(
            r#"[queue]
name = "{queue}"
[[schedules]]
name = "nightly"
cron = "0 3 * * *"
tz = "Asia/Tokyo"
job = {{ type = "cleanup", name = "nightly-cleanup", input = {{}} }}
"#
        ),
    )
    .expect("write settings");
    let job = dir.path().join("job.json");
    std::fs::write(&job, r#"{"type":"cleanup","name":"c","input":{}}"#).expect("job");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"))
            .args(args)
            .arg("--config-file")
            .arg(&file)
            .args(["--redis-url", REDIS_URL])
            .env_remove("DROWL_QUEUE")
            .env_remove("DROWL_SCHEDULES")
            .output()
            .expect("run drowl-host");
        assert_success(&args.join(" "), &out);
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON")
    };
    let added = run(&["enqueue", "--job", job.to_str().expect("path")]);
    assert_eq!(added["queue"], json!(queue), "{added}");
    let counts = run(&["jobs"]);
    assert_eq!(counts["queue"], json!(queue), "{counts}");
    assert_eq!(counts["counts"]["waiting"], json!(1), "{counts}");
    let other = run(&["jobs", "--queue", "settings-cmds-flag-wins"]);
    assert_eq!(other["queue"], json!("settings-cmds-flag-wins"), "{other}");
    let listed = run(&["schedules"]);
    assert_eq!(listed["queue"], json!(queue), "{listed}");
    assert_eq!(
        listed["configured"][0]["name"],
        json!("nightly"),
        "{listed}"
    );
    assert_eq!(
        listed["configured"][0]["tz"],
        json!("Asia/Tokyo"),
        "{listed}"
    );
    assert_eq!(
        listed["configured"][0]["registered"],
        json!(false),
        "{listed}"
    );
    obliterate(&queue).await;
}

/// Security row 27 in the daemon: at concurrency 2 with `--timeout-ms 2000`, two jobs
/// whose plugin waits instead of running (a thread sleep and a `wasi:io/poll`, both
/// practically forever) fail at their deadline and free both slots, so a good job added
/// behind them completes (the real bull client adds and watches them).
#[tokio::test]
async fn waiting_plugins_free_their_slots_at_the_deadline() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("deadline");
    let plugins = plugin_dir();
    // One attempt per job: the scenario's jobs set no options, and drowl's defaults
    // would retry a deadline twice.
    let daemon = Serve::new(&queue, plugins.path())
        .concurrency(2)
        .args(&["--timeout-ms", "2000"])
        .args(&["--job-defaults", "event_ingestion:attempts=1"])
        .name("serve with a 2 s deadline")
        .start();
    let out = scenario("deadline_frees_slots", &[], &queue).await;
    eprintln!("deadline_frees_slots: {}", out["extra"]);
    for ran in out["extra"]["ranMs"].as_array().expect("ranMs") {
        let ran = ran.as_i64().expect("ms");
        assert!(
            (1900..15_000).contains(&ran),
            "a waiting job ran {ran} ms against a 2 s deadline"
        );
    }
    let (_, status) = daemon.get("/").await;
    assert_eq!(status["activeJobs"], json!([]), "{status}");
    drop(daemon);
    obliterate(&queue).await;
}

/// Security row 30 at start: the manifest budget is `serve`'s flag too; a component whose
/// manifest is over it is reported by file and not loaded, and the daemon serves without
/// it.
#[tokio::test]
async fn serve_refuses_a_manifest_over_the_operators_budget() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("manifest-budget");
    let plugins = plugin_dir();
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--max-manifest-bytes", "128"])
        .name("serve with a tiny manifest budget")
        .start();
    let log = daemon.log();
    assert!(
        log.contains("plugin not loaded") && log.contains("the limit is 128"),
        "{log}"
    );
    let (_, status) = daemon.get("/").await;
    assert_eq!(status["plugins"], json!([]), "{status}");
    drop(daemon);
    obliterate(&queue).await;
}

/// Security row 27 at start: plugins whose `describe` sleeps (the slow-describe test
/// plugin sleeps an hour) are reported by file and skipped after `--describe-timeout-ms`,
/// side by side, and the daemon serves with the others within seconds.
#[tokio::test]
async fn a_describe_that_sleeps_does_not_hold_the_daemon_start() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("slow-describe");
    let plugins = plugin_dir();
    let slow = drowl_test_artifacts::SLOW_DESCRIBE_PLUGIN;
    let slow_files = ["0-slow.wasm", "1-slow.wasm", "zz-slow.wasm"];
    for name in slow_files {
        std::fs::copy(slow, plugins.path().join(name)).expect("copy component");
    }
    let started = Instant::now();
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--describe-timeout-ms", "2000"])
        .name("serve with sleeping describes")
        .start();
    let took = started.elapsed();
    let log = daemon.log();
    for name in slow_files {
        assert!(
            log.contains(&format!(
                "plugin not loaded: {name}: describe did not return within 2s"
            )),
            "{name} not reported:\n{log}"
        );
    }
    let (_, status) = daemon.get("/").await;
    assert_eq!(
        status["plugins"],
        json!(["hostile", "keywords"]),
        "{status}"
    );
    // Far below the hour each describe would sleep (and the minute `start` waits).
    assert!(
        took < Duration::from_secs(30),
        "the daemon served {took:?} after it started"
    );
    eprintln!("served {took:?} after start, with three sleeping describes");
    scenario("complete", &[], &queue).await;
    drop(daemon);
    obliterate(&queue).await;
}

// ---- drowl's worker settings and the health check (issue #13) ----

/// With PostgreSQL and S3 (a real moto_server) configured, each behind a proxy the test
/// can cut, `GET /health` checks both: 200 while they answer, 503 `degraded` naming
/// PostgreSQL while it is away (the other checks still ok), 200 again once it is back,
/// then the same for S3, without a restart. (Redis: `daemon_redis.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_postgres_and_s3_and_reports_an_outage_until_it_ends() {
    use drowl_host::storage::s3::{S3Config, S3Store};
    use drowl_testkit::storage::{S3Server, TcpProxy};

    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let pg_addr = {
        let u = url::Url::parse(&db.url).expect("db url");
        format!(
            "{}:{}",
            u.host_str().expect("host"),
            u.port().unwrap_or(5432)
        )
        .parse()
        .expect("db addr")
    };
    let mut proxy = TcpProxy::start(pg_addr).await;
    let s3 = S3Server::start().await;
    let bucket = format!(
        "drowl-health-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let s3cfg = S3Config::new(&s3.endpoint, &bucket, "drowl-test", "drowl-test-secret");
    S3Store::create_bucket(&s3cfg).await.expect("create bucket");
    // The proxy keeps moto's state across an "outage", as a real S3 would.
    let s3_addr = url::Url::parse(&s3.endpoint)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port()?)))
        .and_then(|a| a.parse().ok())
        .expect("s3 addr");
    let mut s3_proxy = TcpProxy::start(s3_addr).await;
    let s3_endpoint = format!("http://{}", s3_proxy.addr);

    let queue = unique_queue("health-pg");
    let plugins = plugin_dir();
    let url_via_proxy = db.url_via(proxy.addr);
    let daemon = Serve::new(&queue, plugins.path())
        .arg("--migrate")
        .env("DATABASE_URL", &url_via_proxy)
        .env("S3_ENDPOINT", &s3_endpoint)
        .env("S3_BUCKET", &bucket)
        .env("S3_ACCESS_KEY", "drowl-test")
        .env("S3_SECRET_KEY", "drowl-test-secret")
        .name("serve with postgres and s3")
        .start();

    let (code, health) = daemon.get("/health").await;
    assert_healthy(code, &health);
    let message = |h: &Value, check: &str| {
        h["checks"][check]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        message(&health, "postgres").starts_with("PostgreSQL at DATABASE_URL"),
        "{health}"
    );
    assert_eq!(
        message(&health, "s3"),
        format!("S3 bucket {bucket} at {s3_endpoint}"),
        "{health}"
    );
    assert!(
        message(&health, "redis").starts_with("Redis at redis://"),
        "{health}"
    );
    assert!(
        message(&health, "worker").starts_with("running on queue"),
        "{health}"
    );

    proxy.stop().await;
    let started = Instant::now();
    let (code, health) = eventually(Duration::from_secs(15), "health turns red", || {
        let d = &daemon;
        async move {
            let (code, body) = d.get("/health").await;
            (code != 200).then_some((code, body))
        }
    })
    .await;
    // Each check is bounded (2 s) and they run side by side: a probe gets its answer.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    eprintln!("while PostgreSQL is away: {health}");
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["service"], "drowl-worker", "{health}");
    assert_eq!(health["checks"]["postgres"]["status"], "error", "{health}");
    let pg = message(&health, "postgres");
    assert!(
        pg.starts_with("PostgreSQL at DATABASE_URL")
            && pg.len() > "PostgreSQL at DATABASE_URL".len() + 20,
        "{health}"
    );
    for other in ["redis", "s3", "worker"] {
        assert_eq!(health["checks"][other]["status"], "ok", "{other}: {health}");
    }

    proxy.restart().await;
    let green = || {
        eventually(Duration::from_secs(20), "health green again", || {
            let d = &daemon;
            async move {
                let (code, body) = d.get("/health").await;
                (code == 200).then_some(body)
            }
        })
    };
    assert_healthy(200, &green().await);

    // S3 away: red naming S3, the others ok; back: green.
    s3_proxy.stop().await;
    let (code, health) = eventually(Duration::from_secs(15), "health turns red for S3", || {
        let d = &daemon;
        async move {
            let (code, body) = d.get("/health").await;
            (code != 200).then_some((code, body))
        }
    })
    .await;
    eprintln!("while S3 is away: {health}");
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["checks"]["s3"]["status"], "error", "{health}");
    assert!(
        message(&health, "s3").starts_with(&format!("S3 bucket {bucket}")),
        "{health}"
    );
    for other in ["redis", "postgres", "worker"] {
        assert_eq!(health["checks"][other]["status"], "ok", "{other}: {health}");
    }
    s3_proxy.restart().await;
    assert_healthy(200, &green().await);
    drop(daemon);
    obliterate(&queue).await;
}

/// Without --listen, the daemon listens where drowl's WORKER_HOST and WORKER_PORT say.
/// While the queue is paused (Bull's `queue.pause()`: no worker takes jobs) its worker
/// check says so but stays healthy: a deliberate pause must not make probes restart
/// every worker.
#[tokio::test]
async fn the_daemon_listens_on_worker_host_and_worker_port() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("worker-port");
    let plugins = plugin_dir();
    let port = drowl_testkit::storage::free_port();
    let daemon = Serve::new(&queue, plugins.path())
        .worker_address("127.0.0.1", port)
        .name("serve on WORKER_PORT")
        .start();
    assert_eq!(daemon.addr().to_string(), format!("127.0.0.1:{port}"));
    let (code, health) = daemon.get("/health").await;
    assert_healthy(code, &health);

    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    q.pause().await.expect("pause");
    let (code, health) = daemon.get("/health").await;
    assert_healthy(code, &health);
    assert!(
        health["checks"]["worker"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("is paused")),
        "{health}"
    );
    assert_eq!(health["checks"]["redis"]["status"], "ok", "{health}");
    q.resume().await.expect("resume");
    let (code, health) = daemon.get("/health").await;
    assert_healthy(code, &health);
    drop(daemon);
    obliterate(&queue).await;
}

/// A bad WORKER_PORT stops the start with one line naming the variable.
#[tokio::test]
async fn a_worker_port_that_is_not_a_number_stops_the_start() {
    let plugins = plugin_dir();
    let (status, log) = Serve::new(&unique_queue("bad-port"), plugins.path())
        .worker_address("127.0.0.1", 0)
        .env("WORKER_PORT", "30o2")
        .name("serve with a bad WORKER_PORT")
        .refused();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("error: WORKER_PORT (--worker-port) \"30o2\" is not a port number"),
        "{log}"
    );
}

/// A configured service that does not answer stops `serve` within --startup-timeout-ms,
/// exit code 2, naming the service and its URL without the password; it does not wait
/// forever looking alive.
#[tokio::test]
async fn an_unreachable_redis_or_database_stops_the_start_within_the_bound() {
    let plugins = plugin_dir();
    let closed = drowl_testkit::storage::free_port();

    let redis_url = format!("redis://:hunter2@127.0.0.1:{closed}");
    let started = Instant::now();
    let (status, log) = Serve::new(&unique_queue("no-redis"), plugins.path())
        .redis_env(&redis_url)
        .args(&["--startup-timeout-ms", "2000"])
        .name("serve with an unreachable REDIS_URL")
        .refused();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains(&format!(
            "error: Redis at REDIS_URL (redis://:***@127.0.0.1:{closed}) did not answer within 2000 ms"
        )),
        "{log}"
    );
    assert!(!log.contains("hunter2"), "{log}");
    // The bound plus loading the plugins (cached) and starting the process.
    assert!(took < Duration::from_secs(20), "stopped after {took:?}");

    let db_url = format!("postgres://drowl:hunter2@127.0.0.1:{closed}/drowl");
    let (status, log) = Serve::new(&unique_queue("no-db"), plugins.path())
        .env("DATABASE_URL", &db_url)
        .args(&["--startup-timeout-ms", "2000"])
        .name("serve with an unreachable DATABASE_URL")
        .refused();
    assert_eq!(status.code(), Some(2), "{log}");
    let line = log
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(
        line.contains("PostgreSQL")
            && line.contains(&format!(
                "DATABASE_URL (postgres://drowl:***@127.0.0.1:{closed}/drowl)"
            )),
        "{line}"
    );
    assert!(!log.contains("hunter2"), "{log}");
}

/// The job every schedule test runs: the hostile plugin doing nothing, quickly.
const TICK_JOB: &str = r#"{"type":"event_ingestion","name":"probe","input":{"pluginId":"hostile","mode":"ok","count":0}}"#;

/// A schedules file in `dir` holding `entries` (JSON objects, comma-separated).
fn schedules_file(dir: &Path, file: &str, entries: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, format!(r#"{{"schedules": [{entries}]}}"#)).expect("schedules file");
    path.display().to_string()
}

/// Every row of a daemon's embedded `jobs` table, once none is pending or running.
async fn settled_job_rows(daemon: &Daemon) -> BTreeMap<String, String> {
    let db = format!(
        "sqlite://{}?mode=ro",
        daemon.data_dir().join("drowl.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open drowl.db");
    let rows = eventually(Duration::from_secs(20), "every row settled", || {
        let pool = &pool;
        async move {
            let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM jobs")
                .fetch_all(pool)
                .await
                .ok()?;
            rows.iter()
                .all(|(_, s)| s != "pending" && s != "running")
                .then(|| rows.into_iter().collect::<BTreeMap<_, _>>())
        }
    })
    .await;
    pool.close().await;
    rows
}

/// Issue 12: a cron schedule declared to two daemons (`serve --schedules`) is one Bull
/// repeatable: each tick runs once, on one daemon, not once per daemon; the real `bull`
/// client lists it with its cron and zone; a daemon restarted with the schedule gone from
/// its file removes it from Redis (and its pending run), while a repeatable drowl's API
/// added itself stays.
#[tokio::test]
async fn a_schedule_fires_once_per_tick_on_two_daemons() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("schedule");
    let plugins = plugin_dir();
    let dir = tempfile::tempdir().expect("dir");
    let every_second = schedules_file(
        dir.path(),
        "schedules.json",
        &format!(
            r#"{{"name":"tick","cron":"* * * * * *","tz":"Europe/Berlin","job":{TICK_JOB},"options":{{"attempts":2}}}}"#
        ),
    );
    let none = schedules_file(dir.path(), "none.json", "");

    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("queue");
    // A schedule of the API's own (yearly, so it does not run here): not the daemons' to
    // remove.
    q.add(
        "api-yearly",
        serde_json::from_str(TICK_JOB).expect("job"),
        drowl_bull::JobOptions::new().repeat(drowl_bull::RepeatOptions {
            cron: Some("0 0 1 1 *".into()),
            tz: Some("UTC".into()),
            ..Default::default()
        }),
    )
    .await
    .expect("api repeatable");

    let a = Serve::new(&queue, plugins.path())
        .args(&["--schedules", &every_second])
        .name("daemon A")
        .start();
    let b = Serve::new(&queue, plugins.path())
        .args(&["--schedules", &every_second])
        .name("daemon B")
        .start();
    let ours = q
        .get_repeatable_jobs()
        .await
        .expect("repeatables")
        .into_iter()
        .filter(|r| r.name == "probe")
        .collect::<Vec<_>>();
    assert_eq!(ours.len(), 1, "two daemons register one schedule: {ours:?}");
    let key = ours[0].key.clone();
    let id = ours[0].id.clone().expect("schedule id");
    assert!(id.starts_with("drowl-host.tick."), "{id}");
    scenario(
        "schedule_listed",
        &[&json!({"name": "probe", "idPrefix": "drowl-host.tick.", "cron": "* * * * * *", "tz": "Europe/Berlin"}).to_string()],
        &queue,
    )
    .await;

    tokio::time::sleep(Duration::from_secs(5)).await;
    // Restart B without the schedule: B stops gracefully (its table is complete), and the
    // new B removes the schedule.
    b.signal("TERM");
    let mut b = b;
    let status = b.wait_for(Duration::from_secs(20)).expect("B stops");
    assert!(status.success(), "B exited with {status}:\n{}", b.log());
    let rows_b = settled_job_rows(&b).await;
    let b2 = Serve::new(&queue, plugins.path())
        .args(&["--schedules", &none])
        .name("daemon B restarted")
        .start();
    let left: Vec<String> = q
        .get_repeatable_jobs()
        .await
        .expect("repeatables")
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert!(!left.contains(&key), "{key} still registered: {left:?}");
    assert_eq!(left.len(), 1, "the API's schedule stays: {left:?}");
    assert!(left[0].starts_with("api-yearly:"), "{left:?}");

    // A run taken just before the removal finishes; after that, nothing more is scheduled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows_a = settled_job_rows(&a).await;
    let rows_b2 = settled_job_rows(&b2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        settled_job_rows(&a).await.len(),
        rows_a.len(),
        "runs after the schedule was removed"
    );

    // (schedule_listed checked, with Bull's own md5s, that this is where runs are.)
    let stem = ours[0].run_id_stem();
    let mut ticks = BTreeSet::new();
    for (who, rows) in [("A", &rows_a), ("B", &rows_b), ("B restarted", &rows_b2)] {
        for (job, status) in rows {
            let millis: i64 = job
                .strip_prefix(&stem)
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| panic!("{who} ran {job}, not a run of {stem}"));
            assert_eq!(millis % 1000, 0, "{job}: a tick is a whole second");
            assert_eq!(status, "completed", "{who}: {job}");
            assert!(
                ticks.insert(millis),
                "tick {millis} ran twice (again on {who})"
            );
        }
    }
    assert!(
        ticks.len() >= 3,
        "several ticks ran in 5 s: {ticks:?} (A {}, B {})",
        rows_a.len(),
        rows_b.len()
    );
    // Every tick the tables hold is one completed job in Redis, and none is pending.
    for millis in &ticks {
        let rec = q
            .get_job(&format!("{stem}{millis}"))
            .await
            .expect("get")
            .expect("job");
        assert_eq!(rec.state, JobState::Completed);
    }
    let counts = q.get_job_counts().await.expect("counts");
    assert_eq!(counts.completed, ticks.len() as u64, "{counts:?}");
    assert_eq!(
        (counts.waiting, counts.active, counts.delayed),
        (0, 0, 1),
        "only the API's yearly run is pending: {counts:?}"
    );
    eprintln!(
        "ticks: {} (A {}, B {}, B restarted {})",
        ticks.len(),
        rows_a.len(),
        rows_b.len(),
        rows_b2.len()
    );
    drop((a, b, b2));
    obliterate(&queue).await;
}

/// Issue 12: a plugin's default schedule (the feed plugin suggests `every-30-minutes`),
/// enabled by name in the schedules file, is registered as a Bull repeatable with the
/// plugin's cron and job, `pluginId` set and the operator's zone; `drowl-host schedules`
/// shows it enabled; a default the plugin does not suggest stops `serve` naming what it
/// does suggest.
#[tokio::test]
async fn a_plugin_default_schedule_is_registered_when_the_operator_enables_it() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("schedules-default");
    let plugins = plugin_dir_with(&[(
        Path::new(drowl_test_artifacts::FEED_PLUGIN),
        "feed_plugin.wasm",
    )]);
    let dir = tempfile::tempdir().expect("dir");
    let enabled = schedules_file(
        dir.path(),
        "schedules.json",
        r#"{"name":"feeds","plugin":"feed","default":"every-30-minutes","tz":"Asia/Tokyo"}"#,
    );
    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--schedules", &enabled])
        .name("serve with a plugin default schedule")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("queue");
    let reg = q.get_repeatable_jobs().await.expect("list");
    assert_eq!(reg.len(), 1, "{reg:?}");
    assert_eq!(reg[0].cron.as_deref(), Some("*/30 * * * *"));
    assert_eq!(reg[0].tz.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(reg[0].name, "feed-entries");
    let run = q
        .get_job(&format!("{}{}", reg[0].run_id_stem(), reg[0].next))
        .await
        .expect("get")
        .expect("the next run is pending");
    assert_eq!(
        run.data,
        json!({"type": "event_ingestion", "name": "feed-entries",
               "input": {"pluginId": "feed"}}),
        "the plugin's job, with pluginId set"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"))
        .args(["schedules", "--schedules", &enabled, "--queue", &queue])
        .args(["--redis-url", REDIS_URL])
        .output()
        .expect("run schedules");
    assert_success("drowl-host schedules", &out);
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let row = &listed["configured"][0];
    assert_eq!(
        (&row["plugin"], &row["default"], &row["registered"]),
        (&json!("feed"), &json!("every-30-minutes"), &json!(true)),
        "{listed}"
    );
    drop(daemon);
    q.close().await.expect("close");

    let unknown = schedules_file(
        dir.path(),
        "unknown.json",
        r#"{"name":"feeds","plugin":"feed","default":"hourly"}"#,
    );
    let (status, log) = Serve::new(&queue, plugins.path())
        .args(&["--schedules", &unknown])
        .refused();
    assert!(!status.success());
    assert!(
        log.contains("plugin `feed` suggests no schedule `hourly`; it suggests: every-30-minutes"),
        "{log}"
    );
    obliterate(&queue).await;
}

/// Issue 12: `drowl-host schedules` lists the file's schedules and what Redis holds, with
/// the next run in the schedule's zone; `serve` refuses a bad schedule naming it and the
/// field.
#[tokio::test]
async fn schedules_command_lists_next_runs_and_bad_schedules_stop_serve() {
    let _redis = RedisInUse::acquire();
    let queue = unique_queue("schedules-cmd");
    let plugins = plugin_dir();
    let dir = tempfile::tempdir().expect("dir");
    let hourly = schedules_file(
        dir.path(),
        "schedules.json",
        &format!(
            r#"{{"name":"github-hourly","cron":"0 * * * *","tz":"Asia/Tokyo","job":{TICK_JOB}}}"#
        ),
    );
    let list = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"))
            .args(["schedules", "--schedules", &hourly, "--queue", &queue])
            .args(["--redis-url", REDIS_URL])
            .output()
            .expect("run schedules");
        assert_success("drowl-host schedules", &out);
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON")
    };
    let before = list();
    assert_eq!(
        before["configured"][0]["registered"],
        json!(false),
        "{before}"
    );
    assert_eq!(before["registered"], json!([]), "{before}");

    let daemon = Serve::new(&queue, plugins.path())
        .args(&["--schedules", &hourly])
        .start();
    let after = list();
    let row = &after["configured"][0];
    assert_eq!(row["registered"], json!(true), "{after}");
    let next = row["next"].as_str().expect("next");
    assert!(
        next.ends_with(":00:00+09:00"),
        "the next run is on the hour, shown in Tokyo time: {next}"
    );
    let next_ms = row["nextMs"].as_i64().expect("nextMs");
    assert!(
        next_ms > now_ms() && next_ms <= now_ms() + 3_600_000,
        "{after}"
    );
    assert_eq!(
        after["registered"][0]["owner"],
        json!("drowl-host"),
        "{after}"
    );
    assert_eq!(after["registered"][0]["nextMs"], json!(next_ms), "{after}");
    drop(daemon);

    // A restart with the same file leaves the pending run as it is ...
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("queue");
    let reg = q.get_repeatable_jobs().await.expect("list").remove(0);
    let run = format!("{}{}", reg.run_id_stem(), reg.next);
    let added_at = q.get_job(&run).await.expect("get").expect("run").timestamp;
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(
        Serve::new(&queue, plugins.path())
            .args(&["--schedules", &hourly])
            .start(),
    );
    let again = q.get_job(&run).await.expect("get").expect("run");
    assert_eq!(again.timestamp, added_at, "the pending run was added again");
    // ... and restarts a schedule whose chain broke (its next run lost).
    {
        use fred::prelude::{KeysInterface, SortedSetsInterface};
        let _: i64 = q.client().zrem(q.key("delayed"), &run).await.expect("zrem");
        let _: i64 = q.client().del(q.key(&run)).await.expect("del");
    }
    drop(
        Serve::new(&queue, plugins.path())
            .args(&["--schedules", &hourly])
            .start(),
    );
    let reg = q.get_repeatable_jobs().await.expect("list").remove(0);
    let rec = q
        .get_job(&format!("{}{}", reg.run_id_stem(), reg.next))
        .await
        .expect("get")
        .expect("the next run is back");
    assert_eq!(rec.state, JobState::Delayed);
    q.close().await.expect("close");

    for (entry, expected) in [
        (
            format!(r#"{{"name":"bad-cron","cron":"0 * * *","job":{TICK_JOB}}}"#),
            r#"schedule "bad-cron": cron:"#,
        ),
        (
            format!(
                r#"{{"name":"bad-tz","cron":"0 * * * *","tz":"Asia/Nowhere","job":{TICK_JOB}}}"#
            ),
            r#"schedule "bad-tz": tz: unknown time zone"#,
        ),
        (
            r#"{"name":"bad-job","cron":"0 * * * *","job":{"type":"event_ingestion","name":"probe","input":[1]}}"#
                .to_owned(),
            r#"schedule "bad-job": job:"#,
        ),
    ] {
        let file = schedules_file(dir.path(), "bad.json", &entry);
        let (status, log) = Serve::new(&queue, plugins.path())
            .args(&["--schedules", &file])
            .refused();
        assert!(!status.success());
        assert!(log.contains(expected), "expected {expected:?} in:\n{log}");
    }
    obliterate(&queue).await;
}

/// Issue 12: the next runs the daemon schedules are the ones Bull's client computes
/// (cron-parser), for 5- and 6-field expressions, across zones and a DST change.
#[tokio::test]
async fn cron_next_runs_match_bulls_client() {
    let _redis = RedisInUse::acquire();
    // 2026-03-29 00:30 UTC: Europe/Berlin goes from UTC+1 to UTC+2 at 01:00 UTC.
    let dst = 1_774_744_200_000_i64;
    let cases = [
        ("0 * * * *", "Asia/Tokyo", 1_700_000_000_123_i64),
        ("*/15 9-17 * * 1-5", "America/New_York", 1_700_000_000_000),
        ("30 2 * * *", "Europe/Berlin", dst),
        ("0 3 * * *", "Europe/Berlin", dst),
        ("*/15 2 * * *", "Europe/Berlin", dst),
        ("*/15 2 * * *", "Europe/Berlin", 1_774_745_400_000),
        ("30 * * * *", "Europe/Berlin", dst),
        // 2026-10-25: Europe/Berlin goes back from UTC+2 to UTC+1 at 01:00 UTC.
        ("30 2 * * *", "Europe/Berlin", 1_792_886_400_000),
        ("*/20 2 * * *", "Europe/Berlin", 1_792_890_300_000),
        ("30 * * * *", "Europe/Berlin", 1_792_888_800_000),
        ("*/10 * * * * *", "UTC", 1_700_000_000_500),
        ("0 0 1,15 * 3", "UTC", 1_700_000_000_000),
        ("0 12 L * *", "UTC", 1_700_000_000_000),
    ];
    let json_cases: Vec<Value> = cases
        .iter()
        .map(|(cron, tz, after)| json!({"cron": cron, "tz": tz, "after": after}))
        .collect();
    let out = scenario(
        "cron_next",
        &[&Value::Array(json_cases).to_string()],
        "cron-next-unused",
    )
    .await;
    let bull: Vec<i64> = serde_json::from_value(out["extra"].clone()).expect("next runs");
    for ((cron, tz, after), expected) in cases.iter().zip(bull) {
        let ours = drowl_bull::next_cron_run(cron, Some(tz), *after).expect(cron);
        assert_eq!(ours, Some(expected), "{cron} in {tz} after {after}");
    }
}

// ---- Issue #12: webhook deliveries through the daemon ----

/// The key the echo plugin's deliveries are signed with in these tests.
const ECHO_KEY: &str = "whsec-echo-4b1d9e7c";

/// The echo plugin's id (from its file name) and the URL a platform posts to.
const ECHO_URL: &str = "/webhooks/webhook-echo";

/// A hex HMAC-SHA256 of `body` under `key`, as a sender computes it.
fn hmac_hex(key: &str, body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A delivery of `n` items, distinct per `tag`.
fn echo_body(tag: &str, n: usize) -> Vec<u8> {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("{tag}-{i}"), "text": format!("item {i} of {tag}"),
                   "at": "2024-05-01T10:00:00Z", "author": "ada"})
        })
        .collect();
    json!({ "items": items }).to_string().into_bytes()
}

/// POSTs `body` to the echo plugin signed with `key` (unsigned when `None`), as delivery
/// `id` (none when `None`): status and JSON answer.
async fn post_echo(
    daemon: &Daemon,
    id: Option<&str>,
    key: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let signature = key.map(|k| hmac_hex(k, &body));
    let mut headers = vec![
        ("content-type", "application/json"),
        ("x-echo-event", "post"),
    ];
    if let Some(id) = id {
        headers.push(("x-echo-delivery", id));
    }
    if let Some(s) = &signature {
        headers.push(("x-echo-signature", s.as_str()));
    }
    let (code, text) = daemon.post_with(ECHO_URL, &headers, body).await;
    let answer: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {text:?}"));
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(!text.contains(ECHO_KEY), "the key in an answer: {text}");
    (code, answer)
}

/// A plugins directory with the echo plugin and the hostile one (an ingestion plugin that
/// receives no webhooks), and a plugin config giving the echo plugin its key from the
/// environment, as operators are told to.
fn webhook_plugins() -> (tempfile::TempDir, tempfile::NamedTempFile) {
    let plugins = plugin_dir_with(&[
        (
            Path::new(drowl_test_artifacts::WEBHOOK_ECHO_PLUGIN),
            "webhook_echo_plugin.wasm",
        ),
        (
            Path::new(drowl_test_artifacts::HOSTILE_PLUGIN),
            "hostile_plugin.wasm",
        ),
    ]);
    let config = plugin_config(
        &json!({"webhook-echo": {"config": {"webhook-secret": "${ECHO_WEBHOOK_SECRET}"}}}),
    );
    (plugins, config)
}

/// Every job Bull holds for `q`, whatever its state.
async fn bull_jobs(q: &Queue) -> u64 {
    let c = q.get_job_counts().await.expect("counts");
    c.waiting + c.active + c.completed + c.failed + c.delayed + c.paused
}

/// A chunked body with no length, sent on a raw connection until the daemon answers:
/// the status line of its answer.
async fn post_chunked_without_length(daemon: &Daemon, chunks: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(daemon.addr())
        .await
        .expect("connect");
    let head = format!(
        "POST {ECHO_URL} HTTP/1.1\r\nHost: drowl\r\nTransfer-Encoding: chunked\r\n\
         x-echo-delivery: chunked\r\nx-echo-signature: {}\r\n\r\n",
        "00".repeat(32)
    );
    s.write_all(head.as_bytes()).await.expect("head");
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    for _ in 0..chunks {
        // The daemon may stop reading (and close) once past its limit.
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap_or(0);
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Issue #12 end to end, on PostgreSQL and the real Redis queue, as a platform pushing
/// deliveries sees it: a signed delivery is answered 202 at once and its items appear in
/// `events` once its job ran; the same delivery again (also eight at once) is 202
/// `duplicate`, stored once, queued once, its events stored once; a wrong, missing or
/// malformed signature is 401, a missing delivery id 400, a body over the limit 413 (with
/// or without a length), a plugin that is not installed or receives no webhooks 404, and
/// none of them stores anything. The key never reaches an answer, the log, Bull or the
/// `jobs` table.
#[tokio::test]
async fn webhook_deliveries_are_verified_stored_once_and_become_events_in_postgres() {
    use drowl_host::storage::postgres::PostgresStore;
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    PostgresStore::connect(&db.url)
        .await
        .expect("connect")
        .migrate()
        .await
        .expect("migrate");
    let (plugins, config) = webhook_plugins();
    let queue = unique_queue("webhooks-pg");
    let daemon = Serve::new(&queue, plugins.path())
        .arg("--plugin-config")
        .arg(config.path().display().to_string())
        .args(&["--webhook-max-body-bytes", "4096"])
        .env("DATABASE_URL", &db.url)
        .env("ECHO_WEBHOOK_SECRET", ECHO_KEY)
        .env("RUST_LOG", "info")
        .name("serve receiving webhooks on PostgreSQL")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("queue");
    let pool = pg_pool(&db).await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect(sql)
        }
    };

    // Signed: accepted at once, then handled by its job.
    let body = echo_body("d1", 2);
    let (code, answer) = post_echo(&daemon, Some("d-1"), Some(ECHO_KEY), body.clone()).await;
    assert_eq!(code, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"status": "accepted", "pluginId": "webhook-echo", "deliveryId": "d-1",
               "event": "post", "jobId": "webhook:webhook-echo:d-1"})
    );
    let done = finished(&q, "webhook:webhook-echo:d-1", Duration::from_secs(60)).await;
    assert_eq!(done.failed_reason, None, "{done:?}");
    assert_eq!(done.name, "webhook post");
    assert_eq!(
        done.data,
        json!({"type": "event_ingestion", "name": "webhook post",
               "input": {"pluginId": "webhook-echo", "webhookDelivery": "d-1"}})
    );
    let out = done.returnvalue.clone().expect("output");
    assert_eq!(out["eventsStored"], 2, "{out}");
    assert_eq!(out["duplicates"], 0, "{out}");
    assert_eq!(out["identities"], 1, "{out}");
    assert_eq!(out["deliveryId"], "d-1", "{out}");
    let rows = sqlx::query(
        "SELECT external_id, event_type, text, plugin_id, actor_platform_user_id
           FROM events WHERE source = 'echo' ORDER BY external_id",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    let rows: Vec<(String, String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get("external_id"),
                r.get("event_type"),
                r.get("text"),
                r.get("plugin_id"),
                r.get("actor_platform_user_id"),
            )
        })
        .collect();
    let row = |i: usize| {
        (
            format!("d1-{i}"),
            "post".to_owned(),
            format!("item {i} of d1"),
            "webhook-echo".to_owned(),
            "ada".to_owned(),
        )
    };
    assert_eq!(rows, [row(0), row(1)]);
    // Stored as received: the body's bytes, every header with its name lowercased.
    let stored = sqlx::query(
        "SELECT event, headers, body, job_id FROM webhook_deliveries
          WHERE plugin_id = 'webhook-echo' AND delivery_id = 'd-1'",
    )
    .fetch_one(&pool)
    .await
    .expect("the delivery");
    assert_eq!(stored.get::<Vec<u8>, _>("body"), body);
    assert_eq!(
        stored.get::<Option<String>, _>("event").as_deref(),
        Some("post")
    );
    assert_eq!(
        stored.get::<Option<String>, _>("job_id").as_deref(),
        Some("webhook:webhook-echo:d-1")
    );
    let headers: Vec<(String, String)> =
        serde_json::from_value(stored.get::<Value, _>("headers")).expect("[name, value] pairs");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-echo-delivery").as_deref(), Some("d-1"));
    assert_eq!(header("x-echo-signature"), Some(hmac_hex(ECHO_KEY, &body)));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert!(
        headers.iter().all(|(k, _)| *k == k.to_lowercase()),
        "{headers:?}"
    );
    let row = final_job_row(&pool, "webhook:webhook-echo:d-1").await;
    assert_eq!(row["status"], "completed", "{row:?}");
    assert_eq!(row["plugin_id"], "webhook-echo", "{row:?}");

    // The same delivery again: acknowledged, stored and queued once, events once.
    let (code, answer) = post_echo(&daemon, Some("d-1"), Some(ECHO_KEY), body.clone()).await;
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["status"], "duplicate", "{answer}");
    assert_eq!(answer["jobId"], "webhook:webhook-echo:d-1", "{answer}");
    // Eight at once of a new one: one stored, one job.
    let racing = echo_body("race", 1);
    let posts = (0..8).map(|_| post_echo(&daemon, Some("d-race"), Some(ECHO_KEY), racing.clone()));
    let answers = futures::future::join_all(posts).await;
    assert!(answers.iter().all(|(c, _)| *c == 202), "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(_, a)| a["status"] == "accepted")
            .count(),
        1,
        "{answers:?}"
    );
    let raced = finished(&q, "webhook:webhook-echo:d-race", Duration::from_secs(60)).await;
    assert_eq!(raced.failed_reason, None, "{raced:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bull_jobs(&q).await, 2, "one job per delivery");
    assert_eq!(
        count("SELECT count(*) FROM webhook_deliveries").await,
        2,
        "one row per delivery"
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE source = 'echo'").await,
        3
    );

    // Refused before anything is stored.
    let forged = echo_body("forged", 1);
    let (code, answer) = post_echo(&daemon, Some("d-2"), Some("another key"), forged.clone()).await;
    assert_eq!(code, 401, "{answer}");
    assert_eq!(
        answer["error"],
        "the x-echo-signature signature does not match the body; the sender's secret must equal the plugin's `webhook-secret`"
    );
    let (code, answer) = post_echo(&daemon, Some("d-3"), None, forged.clone()).await;
    assert_eq!(code, 401, "{answer}");
    assert_eq!(
        answer["error"],
        "the request has no x-echo-signature header; deliveries must be signed with the plugin's webhook secret"
    );
    // A signature of another body (the body changed on the way).
    let (code, _) = daemon
        .post_with(
            ECHO_URL,
            &[
                ("x-echo-delivery", "d-4"),
                ("x-echo-signature", &hmac_hex(ECHO_KEY, b"{}")),
            ],
            forged.clone(),
        )
        .await;
    assert_eq!(code, 401);
    let (code, answer) = post_echo(&daemon, None, Some(ECHO_KEY), forged.clone()).await;
    assert_eq!(code, 400, "{answer}");
    assert_eq!(
        answer["error"],
        "the request has no x-echo-delivery header, which names the delivery"
    );
    let big = echo_body("big", 60);
    assert!(big.len() > 4096);
    let (code, answer) = post_echo(&daemon, Some("d-5"), Some(ECHO_KEY), big).await;
    assert_eq!(code, 413, "{answer}");
    assert_eq!(
        answer["error"],
        "the body is over 4096 bytes, the most this drowl-host accepts (--webhook-max-body-bytes)"
    );
    let status = post_chunked_without_length(&daemon, 64).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    for (path, says) in [
        (
            "/webhooks/nosuch",
            "no installed plugin `nosuch` receives webhooks",
        ),
        (
            "/webhooks/hostile",
            "no installed plugin `hostile` receives webhooks",
        ),
    ] {
        let (code, text) = daemon
            .post_with(path, &[("x-echo-delivery", "d-6")], b"{}".to_vec())
            .await;
        assert_eq!(code, 404, "{path}: {text}");
        assert!(text.contains(says), "{path}: {text}");
    }
    assert_eq!(count("SELECT count(*) FROM webhook_deliveries").await, 2);
    assert_eq!(
        count("SELECT count(*) FROM events WHERE source = 'echo'").await,
        3
    );
    assert_eq!(bull_jobs(&q).await, 2, "no job for a refused delivery");

    // The key is nowhere: not in the log (which does record the deliveries), Bull or
    // the jobs table.
    let log = daemon.log();
    assert!(log.contains("webhook delivery received"), "{log}");
    assert!(log.contains("webhook delivery refused"), "{log}");
    assert!(!log.contains(ECHO_KEY), "the key reached the daemon's log");
    for id in ["webhook:webhook-echo:d-1", "webhook:webhook-echo:d-race"] {
        let record = q.get_job(id).await.expect("redis").expect("job");
        assert!(!format!("{record:?}").contains(ECHO_KEY), "{record:?}");
    }
    let jobs_text: String = sqlx::query_scalar("SELECT string_agg(jobs::text, ' ') FROM jobs")
        .fetch_one(&pool)
        .await
        .expect("jobs");
    assert!(!jobs_text.contains(ECHO_KEY), "{jobs_text}");
    pool.close().await;
    q.close().await.ok();
    drop(daemon);
    obliterate(&queue).await;
}

/// Issue #12 on embedded storage: a signed delivery lands in SQLite's
/// `webhook_deliveries` and its items in `events`. A daemon where the plugin has no key
/// refuses every delivery with 503 saying what to set, and stores nothing.
#[tokio::test]
async fn webhook_deliveries_land_in_embedded_storage_and_need_a_secret() {
    use drowl_host::storage::sqlite::SqliteStore;
    use drowl_host::storage::{EventFilter, EventStore as _};
    let _redis = RedisInUse::acquire();
    let (plugins, config) = webhook_plugins();
    let queue = unique_queue("webhooks-lite");
    let daemon = Serve::new(&queue, plugins.path())
        .arg("--plugin-config")
        .arg(config.path().display().to_string())
        .env("ECHO_WEBHOOK_SECRET", ECHO_KEY)
        .name("serve receiving webhooks on SQLite")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("queue");
    let (code, answer) = post_echo(
        &daemon,
        Some("lite-1"),
        Some(ECHO_KEY),
        echo_body("lite", 3),
    )
    .await;
    assert_eq!(code, 202, "{answer}");
    let done = finished(&q, "webhook:webhook-echo:lite-1", Duration::from_secs(60)).await;
    assert_eq!(done.failed_reason, None, "{done:?}");
    assert_eq!(
        done.returnvalue.as_ref().map(|o| o["eventsStored"].clone()),
        Some(json!(3))
    );
    let store = SqliteStore::open(&daemon.data_dir().join("drowl.db"))
        .await
        .expect("the daemon's database");
    let events = store
        .list_events(
            &EventFilter {
                source: Some("echo".into()),
                ..EventFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("events");
    let mut ids: Vec<&str> = events.iter().map(|e| e.external_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["lite-0", "lite-1", "lite-2"]);
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE job_id = 'webhook:webhook-echo:lite-1'",
    )
    .fetch_one(store.write_pool())
    .await
    .expect("deliveries");
    assert_eq!(stored, 1);
    store.close().await;
    q.close().await.ok();
    drop(daemon);
    obliterate(&queue).await;

    // No key: every delivery is refused, however it is signed.
    let queue = unique_queue("webhooks-nokey");
    let daemon = Serve::new(&queue, plugins.path())
        .name("serve with a webhook plugin but no key")
        .start();
    let (code, answer) = post_echo(
        &daemon,
        Some("nokey-1"),
        Some(ECHO_KEY),
        echo_body("nokey", 1),
    )
    .await;
    assert_eq!(code, 503, "{answer}");
    let e = answer["error"].as_str().unwrap_or_default();
    assert!(
        e.starts_with("plugin `webhook-echo` has no webhook secret, so no delivery can be verified: the operator must set `webhook-secret` in its config"),
        "{e}"
    );
    let store = SqliteStore::open(&daemon.data_dir().join("drowl.db"))
        .await
        .expect("the daemon's database");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(store.write_pool())
        .await
        .expect("deliveries");
    assert_eq!(stored, 0);
    store.close().await;
    drop(daemon);
    obliterate(&queue).await;
}

/// Issue #12: every example delivery of the events the github plugin handles (`push`,
/// `issues`, `issue_comment`, `pull_request`, `star`, `watch`, `fork`, `release`) from
/// GitHub's own `@octokit/webhooks-examples`, POSTed to `serve`'s `/webhooks/github` as
/// GitHub sends them: signed correctly each is accepted, and the events PostgreSQL ends up
/// with are exactly what the plugin's mapping makes of them (run natively here as the
/// oracle, in the sandbox by the daemon); signed wrongly or unsigned, each is refused with
/// 401 and nothing is stored.
#[tokio::test]
async fn every_github_example_delivery_becomes_the_events_expected() {
    use drowl_host::storage::postgres::PostgresStore;
    use drowl_plugin_sdk::JobContext;
    use drowl_plugin_sdk::webhook::Delivery;
    const KEY: &str = "whsec-github-7f3a";
    const EVENTS: [&str; 8] = [
        "push",
        "issues",
        "issue_comment",
        "pull_request",
        "star",
        "watch",
        "fork",
        "release",
    ];
    let _redis = RedisInUse::acquire();
    let index_path = repo_root()
        .join("tests/interop/node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let index: Vec<Value> = serde_json::from_slice(
        &std::fs::read(&index_path)
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/services.sh", index_path.display())),
    )
    .expect("examples index");
    let mut deliveries = Vec::new();
    for entry in &index {
        let name = entry["name"].as_str().expect("event name");
        if !EVENTS.contains(&name) {
            continue;
        }
        for (n, example) in entry["examples"]
            .as_array()
            .expect("examples")
            .iter()
            .enumerate()
        {
            deliveries.push((name.to_owned(), format!("{name}-{n}"), example.to_string()));
        }
    }
    assert!(deliveries.len() > 60, "{} examples", deliveries.len());

    // What the plugin's own mapping makes of each, natively.
    let mut expected = BTreeSet::new();
    for (event, id, body) in &deliveries {
        let d = Delivery {
            job: JobContext {
                job_id: id.clone(),
                job_type: "event_ingestion".into(),
                name: format!("webhook {event}"),
                attempt: 1,
                max_attempts: 1,
                input: "{}".into(),
                idempotency_key: id.clone(),
            },
            delivery_id: id.clone(),
            event: Some(event.clone()),
            headers: vec![("x-github-event".into(), event.clone())],
            body: body.clone().into_bytes(),
            config: Vec::new(),
        };
        let r = github_plugin::webhooks::map_delivery(&d).expect("every example maps");
        for e in r.events {
            expected.insert((e.external_id, e.event_type));
        }
    }
    assert!(expected.len() > 20, "{} distinct events", expected.len());

    let db = TestDb::create().await;
    PostgresStore::connect(&db.url)
        .await
        .expect("connect")
        .migrate()
        .await
        .expect("migrate");
    let plugins = plugin_dir_with(&[(
        Path::new(drowl_test_artifacts::GITHUB_PLUGIN),
        "github_plugin.wasm",
    )]);
    let config =
        plugin_config(&json!({"github": {"config": {"webhook-secret": "${GH_HOOK_KEY}"}}}));
    let queue = unique_queue("github-webhooks");
    let daemon = Serve::new(&queue, plugins.path())
        .arg("--plugin-config")
        .arg(config.path().display().to_string())
        .env("DATABASE_URL", &db.url)
        .env("GH_HOOK_KEY", KEY)
        .concurrency(4)
        .name("serve receiving GitHub's example deliveries")
        .start();
    let pool = pg_pool(&db).await;
    let post = |event: &str, id: &str, body: &str, signature: Option<String>| {
        let headers: Vec<(String, String)> = [
            Some(("content-type".to_owned(), "application/json".to_owned())),
            Some(("x-github-event".to_owned(), event.to_owned())),
            Some(("x-github-delivery".to_owned(), id.to_owned())),
            signature.map(|s| ("x-hub-signature-256".to_owned(), s)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let body = body.as_bytes().to_vec();
        let daemon = &daemon;
        async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            daemon.post_with("/webhooks/github", &h, body).await
        }
    };
    // Wrongly signed and unsigned first: refused, nothing stored.
    for (event, id, body) in deliveries.iter().take(10) {
        let wrong = format!("sha256={}", hmac_hex("not-the-key", body.as_bytes()));
        assert_eq!(
            post(event, id, body, Some(wrong)).await.0,
            401,
            "{id} signed wrongly"
        );
        assert_eq!(post(event, id, body, None).await.0, 401, "{id} unsigned");
    }
    let stored = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect(sql)
        }
    };
    assert_eq!(stored("SELECT count(*) FROM webhook_deliveries").await, 0);
    assert_eq!(stored("SELECT count(*) FROM events").await, 0);

    for (event, id, body) in &deliveries {
        let signature = format!("sha256={}", hmac_hex(KEY, body.as_bytes()));
        let (code, answer) = post(event, id, body, Some(signature)).await;
        assert_eq!(code, 202, "{id}: {answer}");
    }
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("queue");
    for (_, id, _) in &deliveries {
        let done = finished(
            &q,
            &format!("webhook:github:{id}"),
            Duration::from_secs(120),
        )
        .await;
        assert_eq!(done.failed_reason, None, "{id}: {done:?}");
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT external_id, event_type FROM events WHERE source = 'github' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    let got: BTreeSet<(String, String)> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), got.len(), "each event stored once");
    assert_eq!(
        got, expected,
        "the sandboxed plugin stored what its mapping makes of them"
    );
    assert_eq!(
        stored("SELECT count(*) FROM webhook_deliveries").await,
        i64::try_from(deliveries.len()).expect("count"),
        "every delivery stored as received"
    );
    q.close().await.expect("close");
    drop(daemon);
    obliterate(&queue).await;
}
