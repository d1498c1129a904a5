//! Issue 13 end to end: drowl's `plugins` table in PostgreSQL is the registry of a real
//! `drowl-host serve` on the machine's Redis. Plugins are installed, disabled, enabled
//! and upgraded while jobs run, by `drowl-host plugin ...` and by SQL on the table as
//! drowl's API would; the daemon picks every change up without a restart, a job running
//! across a change finishes on the build it started with, and a component that does not
//! load gets `last_error`.
//!
//! Needs Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 and the wasm32-wasip2
//! target; nothing is faked.

mod daemon_support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use daemon_support::*;
use drowl_bull::{JobState, Queue, QueueConfig};
use drowl_host::storage::postgres::PostgresStore;
use drowl_testkit::storage::TestDb;
use serde_json::{Value, json};

/// `drowl-host ARGS` against the test database, with a data directory of its own (not
/// the daemon's: the daemon fetches what is installed from the database, as a daemon on
/// another machine would).
async fn cli(args: &[&str], db: &TestDb, dir: &Path) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"));
    cmd.args(args)
        .args(["--data-dir", dir.join("cli-data").to_str().expect("utf-8")])
        .env("DATABASE_URL", &db.url)
        .env_remove("DROWL_DATA_DIR")
        .env_remove("RUST_LOG");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run drowl-host"))
        .await
        .expect("cli task");
    assert_success(&format!("drowl-host {}", args.join(" ")), &out);
    out
}

async fn migrated(db: &TestDb) -> sqlx::PgPool {
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.pool().clone()
}

fn ingest(input: Value) -> Value {
    json!({"type": "event_ingestion", "name": "registry-probe", "input": input})
}

async fn add(q: &Queue, input: Value) -> String {
    q.add("probe", ingest(input), Default::default())
        .await
        .expect("add job")
        .to_string()
}

/// Runs one `ok` job to its end: the version it ran on, or its failure.
async fn probe(q: &Queue) -> Result<String, String> {
    probe_at(q).await.0
}

/// [`probe`], and when the job finished (epoch ms).
async fn probe_at(q: &Queue) -> (Result<String, String>, i64) {
    let id = add(q, json!({"pluginId": "hostile", "mode": "ok"})).await;
    let rec = finished(q, &id, Duration::from_secs(60)).await;
    let at = rec.finished_on.expect("finishedOn");
    let outcome = match rec.state {
        JobState::Completed => Ok(rec.returnvalue.expect("returnvalue")["pluginVersion"]
            .as_str()
            .expect("pluginVersion")
            .to_owned()),
        _ => Err(rec.failed_reason.unwrap_or_default()),
    };
    (outcome, at)
}

/// Probes until a job gives `want` (the daemon polls the table every 200 ms here);
/// returns when that job finished (epoch ms).
async fn until(q: &Queue, what: &str, want: impl Fn(&Result<String, String>) -> bool) -> i64 {
    let mut last = None;
    for _ in 0..60 {
        let (got, at) = probe_at(q).await;
        if want(&got) {
            return at;
        }
        last = Some(got);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: jobs still give {last:?}");
}

/// A job that sleeps `ms` in the plugin, once the daemon has started it (its progress
/// says it is inside the plugin).
async fn running_sleeper(q: &Queue, ms: u64) -> String {
    let id = add(q, json!({"pluginId": "hostile", "mode": "sleep", "ms": ms})).await;
    eventually(Duration::from_secs(30), "the sleeper runs", || {
        let id = id.clone();
        async move {
            let rec = q.get_job(&id).await.ok()??;
            (rec.state == JobState::Active && rec.progress == json!(1)).then_some(())
        }
    })
    .await;
    id
}

async fn last_error(pool: &sqlx::PgPool, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT last_error FROM plugins WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("plugins row")
}

/// Install, disable and enable, upgrade while jobs run, by the CLI and in SQL; a broken
/// component from the table.
#[tokio::test]
async fn plugins_change_while_jobs_run() {
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let pool = migrated(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let no_files = tempfile::tempdir().expect("empty plugins dir");
    let queue = unique_queue("registry");
    let daemon = Serve::new(&queue, no_files.path())
        .concurrency(3)
        .env("DATABASE_URL", &db.url)
        .args(&["--registry-poll-ms", "200"])
        .name("serve on the plugins table")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");

    // Nothing installed yet: jobs fail as not installed.
    let e = probe(&q).await.expect_err("nothing installed");
    assert!(e.contains("plugin `hostile` is not installed"), "{e}");

    // Installed by the CLI while the daemon runs: its next poll loads it.
    let hostile = drowl_test_artifacts::HOSTILE_PLUGIN;
    cli(&["plugin", "install", hostile], &db, dir.path()).await;
    until(&q, "the install is picked up", |r| {
        r.as_deref() == Ok("0.2.0")
    })
    .await;
    dashboard_row(&daemon, "hostile", "<td>0.2.0</td>").await;

    // drowl's API disables it in SQL while a job runs: the running job finishes on the
    // plugin; new jobs fail at once as plugin-not-found, saying it is disabled.
    let sleeper = running_sleeper(&q, 3000).await;
    sqlx::query("UPDATE plugins SET is_enabled = false WHERE id = 'hostile'")
        .execute(&pool)
        .await
        .expect("disable in SQL");
    let mut refused = None;
    for _ in 0..60 {
        let id = add(&q, json!({"pluginId": "hostile", "mode": "ok"})).await;
        let rec = finished(&q, &id, Duration::from_secs(30)).await;
        if rec.state == JobState::Failed {
            refused = Some((id, rec));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (refused_id, rec) = refused.expect("a job refused once disabled");
    let reason = rec.failed_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("plugin `hostile` is disabled in the plugins table (is_enabled = false); enable it with `drowl-host plugin enable hostile`"),
        "{reason}"
    );
    assert_eq!(
        rec.attempts_made, 1,
        "refused at once, not retried: {rec:?}"
    );
    let slept = finished(&q, &sleeper, Duration::from_secs(30)).await;
    assert_eq!(slept.state, JobState::Completed, "{slept:?}");
    assert_eq!(
        slept.returnvalue.clone().expect("returnvalue")["pluginVersion"],
        "0.2.0"
    );
    assert!(
        rec.finished_on < slept.finished_on,
        "the refusal came while the running job still ran: {rec:?} {slept:?}"
    );
    // The refused job is not lost: failed in Bull and in the jobs table, with its code.
    let (status, code): (String, Option<String>) = eventually(
        Duration::from_secs(10),
        "the jobs table has the refusal",
        || {
            let pool = pool.clone();
            let id = refused_id.clone();
            async move {
                sqlx::query_as(
                    "SELECT status, error_code FROM jobs WHERE id = $1 AND status = 'failed'",
                )
                .bind(&id)
                .fetch_optional(&pool)
                .await
                .ok()?
            }
        },
    )
    .await;
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("failed", Some("plugin-not-found"))
    );

    // Enabled again by the CLI; the refused job, retried, now runs.
    cli(&["plugin", "enable", "hostile"], &db, dir.path()).await;
    until(&q, "the enable is picked up", |r| {
        r.as_deref() == Ok("0.2.0")
    })
    .await;
    q.run_now(&refused_id).await.expect("retry the refused job");
    let retried = finished_again(&q, &refused_id).await;
    assert_eq!(retried["pluginVersion"], "0.2.0");

    // Upgraded by the CLI while a job runs: the running job finishes on 0.2.0, new jobs
    // run 0.2.0+next.
    let sleeper = running_sleeper(&q, 3000).await;
    cli(
        &[
            "plugin",
            "upgrade",
            "hostile",
            drowl_test_artifacts::HOSTILE_PLUGIN_NEXT,
        ],
        &db,
        dir.path(),
    )
    .await;
    let upgraded_at = until(&q, "the upgrade is picked up", |r| {
        r.as_deref() == Ok("0.2.0+next")
    })
    .await;
    dashboard_row(&daemon, "hostile", "<td>0.2.0+next</td>").await;
    let slept = finished(&q, &sleeper, Duration::from_secs(30)).await;
    assert!(
        Some(upgraded_at) < slept.finished_on,
        "a job ran the new build while the old one still ran its job: {upgraded_at} {slept:?}"
    );
    assert_eq!(slept.state, JobState::Completed, "{slept:?}");
    assert_eq!(
        slept.returnvalue.clone().expect("returnvalue")["pluginVersion"],
        "0.2.0",
        "the job that started before the upgrade finished on the old build"
    );

    // drowl's API points the row at a component that does not load: `last_error` says
    // why, and the build that works keeps serving. Then a row for a new id whose
    // component is broken: not run, its `last_error` written.
    let garbage = b"not a component".to_vec();
    let sha = drowl_host::jobs::catalog::components::sha256_hex(&garbage);
    sqlx::query("INSERT INTO plugin_components (sha256, bytes, size) VALUES ($1, $2, $3)")
        .bind(&sha)
        .bind(&garbage)
        .bind(garbage.len() as i64)
        .execute(&pool)
        .await
        .expect("insert component");
    sqlx::query("UPDATE plugins SET component_sha256 = $1 WHERE id = 'hostile'")
        .bind(&sha)
        .execute(&pool)
        .await
        .expect("point at it");
    let err = eventually(Duration::from_secs(20), "last_error is written", || {
        let pool = pool.clone();
        async move { last_error(&pool, "hostile").await }
    })
    .await;
    assert!(
        err.contains("is not a WebAssembly file")
            && err.contains("keeps running version 0.2.0+next"),
        "{err}"
    );
    assert_eq!(probe(&q).await.as_deref(), Ok("0.2.0+next"));
    sqlx::query(
        "INSERT INTO plugins (id, name, version, is_enabled, component_sha256) \
         VALUES ('broken', 'Broken', '1.0.0', true, $1)",
    )
    .bind(&sha)
    .execute(&pool)
    .await
    .expect("insert row");
    let err = eventually(Duration::from_secs(20), "last_error of the new row", || {
        let pool = pool.clone();
        async move { last_error(&pool, "broken").await }
    })
    .await;
    assert!(err.contains("is not a WebAssembly file"), "{err}");
    let row = dashboard_row(&daemon, "broken", "not loaded").await;
    assert!(row.contains("is not a WebAssembly file"), "{row}");
    let id = add(&q, json!({"pluginId": "broken"})).await;
    let rec = finished(&q, &id, Duration::from_secs(30)).await;
    let reason = rec.failed_reason.unwrap_or_default();
    assert!(
        reason.contains("plugin `broken` failed to load: "),
        "{reason}"
    );

    // The row fixed (the upgrade's build back): loads, and the error is cleared.
    cli(
        &[
            "plugin",
            "upgrade",
            "hostile",
            drowl_test_artifacts::HOSTILE_PLUGIN,
        ],
        &db,
        dir.path(),
    )
    .await;
    until(&q, "the fix is picked up", |r| r.as_deref() == Ok("0.2.0")).await;
    eventually(Duration::from_secs(10), "last_error cleared", || {
        let pool = pool.clone();
        async move { last_error(&pool, "hostile").await.is_none().then_some(()) }
    })
    .await;
    assert!(
        !daemon.log().contains("panicked"),
        "the daemon panicked:\n{}",
        daemon.log()
    );
    drop(daemon);
    obliterate(&queue).await;
}

/// The dashboard's row for plugin `id` (`<tr id="plugin-ID">...</tr>`), once `/ui` shows
/// one that contains `want`: the page reads the daemon's plugins per request, so an
/// install, upgrade or broken row made while serving shows without a restart.
async fn dashboard_row(daemon: &Daemon, id: &str, want: &str) -> String {
    let start = format!("<tr id=\"plugin-{id}\">");
    eventually(
        Duration::from_secs(20),
        &format!("/ui lists {id} with {want}"),
        || {
            let start = start.clone();
            async move {
                let (status, page) = daemon.get_text("/ui").await;
                let from = page.find(&start)?;
                let row = &page[from..];
                let row = &row[..row.find("</tr>")?];
                (status == 200 && row.contains(want)).then(|| row.to_owned())
            }
        },
    )
    .await
}

/// The return value of a job that was retried, once it completed again.
async fn finished_again(q: &Queue, id: &str) -> Value {
    eventually(
        Duration::from_secs(30),
        "the retried job completes",
        || async move {
            let rec = q.get_job(id).await.ok()??;
            (rec.state == JobState::Completed).then_some(rec.returnvalue?)
        },
    )
    .await
}

/// A daemon started on a table with rows (no plugins directory at all): installed
/// plugins run, a row drowl's API wrote for a component nobody has gets `last_error`,
/// and the daemon serves the rest.
#[tokio::test]
async fn a_daemon_starts_from_the_table_alone() {
    let _redis = RedisInUse::acquire();
    let db = TestDb::create().await;
    let pool = migrated(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    cli(
        &[
            "plugin",
            "install",
            drowl_test_artifacts::HOSTILE_PLUGIN,
            "--config",
            "label=from-the-table",
        ],
        &db,
        dir.path(),
    )
    .await;
    sqlx::query(
        "INSERT INTO plugins (id, name, version, is_enabled, component_sha256) \
         VALUES ('ghost', 'Ghost', '1.0.0', true, $1)",
    )
    .bind("ab".repeat(32))
    .execute(&pool)
    .await
    .expect("insert row");
    let queue = unique_queue("registry-start");
    let daemon = Serve::new(&queue, &dir.path().join("no-such-dir"))
        .env("DATABASE_URL", &db.url)
        .name("serve from the table")
        .start();
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone()))
        .await
        .expect("connect");
    assert_eq!(probe(&q).await.as_deref(), Ok("0.2.0"));
    // Its config is the row's.
    let id = add(
        &q,
        json!({"pluginId": "hostile", "mode": "leak-config", "key": "label"}),
    )
    .await;
    let rec = finished(&q, &id, Duration::from_secs(30)).await;
    assert!(
        rec.failed_reason
            .as_deref()
            .is_some_and(|r| r.contains("failing with label from-the-table")),
        "{rec:?}"
    );
    let err = last_error(&pool, "ghost")
        .await
        .expect("ghost's last_error");
    assert!(
        err.contains(&format!("component {} is neither in", "ab".repeat(32)))
            && err.contains("plugin_components"),
        "{err}"
    );
    drop(daemon);
    obliterate(&queue).await;
}
