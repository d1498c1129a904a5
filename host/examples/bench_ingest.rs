//! Ingestion throughput into PostgreSQL + S3, side by side with `psql \copy` of the same rows.
//!
//! Not a test: it prints events per second so the storage path can be compared with the
//! fastest thing PostgreSQL offers on the same machine (and with drowl's Node.js worker,
//! about 5,600 events/s in toolchain-facts.md).
//!
//! ```text
//! cargo run --release -p drowl-host --example bench_ingest -- [events] [batch] [concurrency]
//! ```
//!
//! Defaults: 20,000 events of 1-5 KB, batches of 1,000, concurrency 4 for the concurrent
//! run. PostgreSQL: `DROWL_BENCH_PG_ADMIN_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a `drowl_bench_<random>` database is
//! created and dropped. S3: `S3_ENDPOINT`/`S3_ACCESS_KEY`/`S3_SECRET_KEY` if set, otherwise a
//! moto_server is started from PATH or `.venv/bin`. `psql` must be on PATH.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use drowl_host::storage::postgres::{InsertMode, PostgresConfig, PostgresStore};
use drowl_host::storage::s3::{S3Config, S3Store};
use drowl_host::storage::{EventStore, NewEvent, ObjectKey, ObjectStore};
use sha2::Digest;
use sqlx::{Connection, Executor, PgConnection};

const COLUMNS: &str = "id, source, external_id, event_type, occurred_at, raw_payload, \
    storage_key, text, actor_platform, actor_platform_user_id, plugin_id, plugin_version, \
    correlation_id";

/// A GitHub-shaped event whose payload is 1-5 KB.
fn event(run: &str, n: usize) -> NewEvent {
    let size = 1024 + (n * 7919) % 4096;
    let body: String = (0..size)
        .map(|i| (b'a' + ((i * 31 + n) % 26) as u8) as char)
        .collect();
    let occurred = Utc
        .timestamp_opt(1_704_067_200 + n as i64, 0)
        .single()
        .unwrap_or_default();
    NewEvent {
        id: format!("{run}{n:010}"),
        source: "github".into(),
        external_id: format!("{run}-{n}"),
        event_type: "IssueCommentEvent".into(),
        occurred_at: occurred,
        raw_payload: serde_json::json!({
            "id": n.to_string(),
            "type": "IssueCommentEvent",
            "actor": {"id": n % 997, "login": format!("user{}", n % 997)},
            "repo": {"id": 42, "name": "drowl/drowl"},
            "payload": {"action": "created", "comment": {"body": body}},
            "public": true,
            "created_at": occurred.to_rfc3339(),
        }),
        storage_key: None,
        text: Some(format!("comment {n} about TypeScript and React")),
        actor: Some(("github".into(), (n % 997).to_string())),
        plugin_id: "github".into(),
        plugin_version: "1.0.0".into(),
        correlation_id: Some(format!("bench-{run}")),
    }
}

fn copy_field(out: &mut Vec<u8>, f: Option<&str>) {
    let Some(s) = f else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// The same rows as `COPY ... (FORMAT text)` input for `psql \copy`.
fn copy_file(events: &[NewEvent]) -> Result<tempfile::NamedTempFile> {
    let mut f = tempfile::NamedTempFile::new()?;
    let mut buf = Vec::new();
    for e in events {
        let occurred = e.occurred_at.to_rfc3339();
        let payload = serde_json::to_string(&e.raw_payload)?;
        let fields = [
            Some(e.id.as_str()),
            Some(&e.source),
            Some(&e.external_id),
            Some(&e.event_type),
            Some(&occurred),
            Some(&payload),
            e.storage_key.as_deref(),
            e.text.as_deref(),
            e.actor.as_ref().map(|a| a.0.as_str()),
            e.actor.as_ref().map(|a| a.1.as_str()),
            Some(&e.plugin_id),
            Some(&e.plugin_version),
            e.correlation_id.as_deref(),
        ];
        for (i, v) in fields.iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            copy_field(&mut buf, *v);
        }
        buf.push(b'\n');
    }
    f.write_all(&buf)?;
    f.flush()?;
    Ok(f)
}

/// One page as the host ingests it: payloads to S3 first (deterministic key), then rows.
async fn ingest_page(
    objects: Option<&S3Store>,
    store: &PostgresStore,
    page: &[NewEvent],
) -> Result<()> {
    let Some(objects) = objects else {
        store.insert_events(page).await?;
        return Ok(());
    };
    let mut digest = sha2::Sha256::new();
    for e in page {
        digest.update(e.id.as_bytes());
        digest.update([0]);
    }
    let day = page[0].occurred_at.date_naive();
    let key = ObjectKey::raw_batch("github", "github", day, &hex::encode(digest.finalize()))?;
    let mut ndjson = Vec::with_capacity(page.len() * 3500);
    for e in page {
        serde_json::to_writer(&mut ndjson, &e.raw_payload)?;
        ndjson.push(b'\n');
    }
    objects
        .put(&key, Bytes::from(ndjson), "application/x-ndjson")
        .await?;
    let rows: Vec<NewEvent> = page
        .iter()
        .map(|e| NewEvent {
            storage_key: Some(key.as_str().to_owned()),
            ..e.clone()
        })
        .collect();
    store.insert_events(&rows).await?;
    Ok(())
}

/// Ingests all pages with `concurrency` pages in flight; returns the elapsed time.
async fn run(
    objects: Option<Arc<S3Store>>,
    store: Arc<PostgresStore>,
    events: Arc<Vec<NewEvent>>,
    batch: usize,
    concurrency: usize,
) -> Result<Duration> {
    let pages: Vec<std::ops::Range<usize>> = (0..events.len())
        .step_by(batch)
        .map(|s| s..(s + batch).min(events.len()))
        .collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pages = Arc::new(pages);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (objects, store, events, pages, next) = (
            objects.clone(),
            store.clone(),
            events.clone(),
            pages.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(r) = pages.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                ingest_page(objects.as_deref(), &store, &events[r.clone()]).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(started.elapsed())
}

/// This process's CPU time (user + system) in seconds, from /proc (Linux; 100 Hz ticks),
/// to show how much of a run is client work rather than waiting for the servers.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let ticks: u64 =
                rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn s3() -> Result<(S3Config, Option<Moto>)> {
    if let Some(cfg) = S3Config::from_env()? {
        return Ok((cfg, None));
    }
    let venv =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    let bin = if venv.is_file() {
        venv
    } else {
        "moto_server".into()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (set S3_ENDPOINT to use another server)",
                bin.display()
            )
        })?;
    let moto = Moto(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("moto_server did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cfg = S3Config::new(
        format!("http://127.0.0.1:{port}"),
        "drowl-bench",
        "bench",
        "bench",
    );
    Ok((cfg, Some(moto)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let total = args.first().copied().unwrap_or(20_000);
    let batch = args.get(1).copied().unwrap_or(1_000).max(1);
    let concurrency = args.get(2).copied().unwrap_or(4).max(1);

    let admin = std::env::var("DROWL_BENCH_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin_conn = PgConnection::connect(&admin)
        .await
        .context("PostgreSQL admin URL")?;
    let db = format!("drowl_bench_{}", uuid::Uuid::new_v4().simple());
    admin_conn
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&db);
    let result = bench(url.as_str(), total, batch, concurrency).await;
    admin_conn
        .execute(format!("DROP DATABASE {db} WITH (FORCE)").as_str())
        .await?;
    result
}

async fn bench(url: &str, total: usize, batch: usize, concurrency: usize) -> Result<()> {
    let (s3cfg, _moto) = s3().await?;
    S3Store::create_bucket(&s3cfg).await?;
    let objects = Arc::new(S3Store::connect(&s3cfg).await?);
    let unnest = Arc::new(PostgresStore::connect(url).await?);
    unnest.migrate().await?;
    let mut copy_cfg = PostgresConfig::new(url);
    copy_cfg.insert_mode = InsertMode::Copy;
    let copy = Arc::new(PostgresStore::connect_with(&copy_cfg).await?);

    let mk = |run: &str| Arc::new((0..total).map(|n| event(run, n)).collect::<Vec<_>>());
    let avg_payload: usize = mk("size")
        .iter()
        .map(|e| {
            serde_json::to_string(&e.raw_payload)
                .map(|s| s.len())
                .unwrap_or(0)
        })
        .sum::<usize>()
        / total.max(1);
    println!(
        "drowl-host ingest benchmark: {total} events, batches of {batch}, payload avg {avg_payload} B \
         (1-5 KB), events table with all indexes (JSONB GIN included), {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("S3: {}\n", s3cfg.endpoint);
    println!(
        "{:<58} {:>10} {:>12} {:>11}",
        "run", "seconds", "events/s", "client CPU"
    );

    let truncate = || async {
        sqlx::query("TRUNCATE events CASCADE")
            .execute(unnest.pool())
            .await?;
        sqlx::query("VACUUM ANALYZE events")
            .execute(unnest.pool())
            .await?;
        anyhow::Ok(())
    };
    let cpu_mark = std::cell::Cell::new(cpu_secs());
    let report = |name: &str, d: Duration| {
        let now = cpu_secs();
        let cpu = now - cpu_mark.replace(now);
        println!(
            "{name:<58} {:>10.2} {:>12.0} {:>10.2}s",
            d.as_secs_f64(),
            total as f64 / d.as_secs_f64(),
            cpu
        );
    };

    // 1. psql \copy of the same rows (storage_key filled as the pipeline would).
    truncate().await?;
    let rows: Vec<NewEvent> = mk("P")
        .iter()
        .map(|e| NewEvent {
            storage_key: Some("plugins/github/raw/github/x.ndjson".into()),
            ..e.clone()
        })
        .collect();
    let file = copy_file(&rows)?;
    cpu_mark.set(cpu_secs());
    let started = Instant::now();
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c"])
        .arg(format!(
            "\\copy events ({COLUMNS}) FROM '{}'",
            file.path().display()
        ))
        .output()
        .context("running psql")?;
    let d = started.elapsed();
    if !out.status.success() {
        bail!(
            "psql \\copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    report("psql \\copy (one COPY, no conflict handling)", d);

    // 2. Postgres only, UNNEST, sequential pages.
    truncate().await?;
    let ev = mk("U");
    cpu_mark.set(cpu_secs());
    let d = run(None, unnest.clone(), ev, batch, 1).await?;
    report("PostgreSQL, UNNEST ... ON CONFLICT, 1 page at a time", d);

    // 3. Postgres only, COPY to temp table + INSERT ON CONFLICT.
    truncate().await?;
    let ev = mk("C");
    cpu_mark.set(cpu_secs());
    let d = run(None, copy.clone(), ev, batch, 1).await?;
    report("PostgreSQL, COPY temp + INSERT ON CONFLICT, 1 at a time", d);

    // 4. Re-ingest of already stored events (a retried job): all conflicts.
    let ev = mk("C");
    cpu_mark.set(cpu_secs());
    let d = run(None, unnest.clone(), ev, batch, 1).await?;
    report("PostgreSQL, UNNEST, re-ingest (every row exists)", d);

    // 5. The real path: S3 object per page, then rows; sequential and concurrent.
    for (name, store, conc, tag) in [
        (
            "S3 + PostgreSQL (UNNEST), 1 page at a time".to_owned(),
            &unnest,
            1,
            "S",
        ),
        (
            format!("S3 + PostgreSQL (UNNEST), {concurrency} pages in flight"),
            &unnest,
            concurrency,
            "T",
        ),
        (
            format!("S3 + PostgreSQL (COPY), {concurrency} pages in flight"),
            &copy,
            concurrency,
            "V",
        ),
    ] {
        truncate().await?;
        let ev = mk(tag);
        cpu_mark.set(cpu_secs());
        let d = run(Some(objects.clone()), store.clone(), ev, batch, conc).await?;
        report(&name, d);
    }

    // 6. S3 alone, to show how much of the pipeline is the object store.
    let pages = mk("O");
    cpu_mark.set(cpu_secs());
    let started = Instant::now();
    for (i, page) in pages.chunks(batch).enumerate() {
        let mut nd = Vec::new();
        for e in page {
            serde_json::to_writer(&mut nd, &e.raw_payload)?;
            nd.push(b'\n');
        }
        let key = ObjectKey::plugin_object("github", &format!("bench/{i}.ndjson"))?;
        objects
            .put(&key, Bytes::from(nd), "application/x-ndjson")
            .await?;
    }
    report(
        "S3 only (one object per page), 1 at a time",
        started.elapsed(),
    );
    Ok(())
}
