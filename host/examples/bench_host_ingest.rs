//! Events per second through drowl-host's own ingestion path into PostgreSQL + S3, side by
//! side with `psql \copy` of the same rows, in one run on one machine.
//!
//! Not a test. Where `bench_ingest` measures the storage backends alone, this goes through
//! what the daemon opens and runs:
//!
//! 1. `psql \copy` of the rows the host would write (one COPY, no conflict handling): the
//!    ceiling PostgreSQL offers on this machine.
//! 2. The host's store path for plugin-shaped pages of 1-5 KB GitHub events, on the
//!    [`Storage`] that `storage::open` returns for `DATABASE_URL` + `S3_*`: per page one
//!    NDJSON object to S3, the actors' identity upsert, one batch of event rows, the cursor
//!    to `plugin_kv`, in that order (the steps of `jobs::ingest`, without the plugin);
//!    then the same pages again (a retried job), and with pages in flight concurrently.
//! 3. The whole executor with the hostile test plugin's `ok` mode (real component, real
//!    runtime, validation, storage): pages of the same size, but its payloads are ~100 B.
//! 4. The whole executor with the github plugin over a generated GitHub feed of 1-5 KB
//!    events served on loopback (HTTP, JSON parsing in the plugin, fixture server in this
//!    process), at the plugin's largest page (100).
//!
//! ```text
//! cargo run -p drowl-host --example bench_host_ingest \
//!     --config 'profile.dev.package.drowl-host.opt-level=2' \
//!     --config 'profile.dev.package.drowl-host.debug-assertions=false' \
//!     -- [pages] [events-per-page] [github-events]
//! ```
//!
//! Defaults: 10 pages of 1,000 events, 1,000 events for the github run. The dev profile
//! already optimises dependencies (sqlx, the AWS SDK, wasmtime); the two `--config` flags
//! optimise drowl-host's own code too (generic serde and sqlx code is compiled there),
//! which costs a rebuild of one crate instead of a release build of every dependency.
//! Without them the numbers are those of an unoptimised host. The output says which it
//! was (by `debug_assertions`). A `BENCH ingest.*` summary line (events/s of each run)
//! ends the output for `scripts/bench.sh`, which runs the release build with
//! `20 1000 20000`: the github run then stores the same 20,000 items `psql` copies.
//! PostgreSQL: `DROWL_BENCH_PG_ADMIN_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a `drowl_bench_<random>` database is
//! created and dropped. S3: `S3_ENDPOINT`/`S3_BUCKET`/`S3_ACCESS_KEY`/`S3_SECRET_KEY` if
//! set, otherwise moto_server from PATH or `.venv/bin`. `psql` must be on PATH.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use drowl_host::jobs::ingest::CURSOR_NAMESPACE;
use drowl_host::jobs::{Executor, HostPolicy, JobRequest, PluginSettings, ReadyPlugin, Registry};
use drowl_host::runtime::{EngineSettings, Runtime};
use drowl_host::storage::postgres::PostgresConfig;
use drowl_host::storage::s3::{S3Config, S3Store};
use drowl_host::storage::{self, IdentityRecord, NewEvent, ObjectKey, Storage, StorageConfig};
use futures::{StreamExt, TryStreamExt};
use sha2::Digest;
use sqlx::{Connection, Executor as _, PgConnection};

const COLUMNS: &str = "id, source, external_id, event_type, occurred_at, raw_payload, \
    storage_key, text, actor_platform, actor_platform_user_id, plugin_id, plugin_version, \
    correlation_id";

/// Pages stored at once in the concurrent run (the daemon's default job concurrency is
/// of this order; more would only queue on 2 cores).
const IN_FLIGHT: usize = 4;

/// A GitHub events API item (an issue comment) of 1-5 KB, newest first as `n` grows.
fn github_item(n: usize) -> serde_json::Value {
    let body_len = 500 + (n * 7919) % 3880;
    let words = [
        "Rust",
        "TypeScript",
        "WebAssembly",
        "React",
        "the",
        "parser",
        "is",
        "faster",
        "now",
    ];
    let mut body = String::with_capacity(body_len + 16);
    let mut w = n;
    while body.len() < body_len {
        body.push_str(words[w % words.len()]);
        body.push(' ');
        w = w.wrapping_mul(31).wrapping_add(7);
    }
    let actor = n % 997;
    let created = Utc
        .timestamp_opt(1_730_000_000 - n as i64, 0)
        .single()
        .unwrap_or_default();
    serde_json::json!({
        "id": (70_000_000_000u64 - n as u64).to_string(),
        "type": "IssueCommentEvent",
        "actor": {
            "id": 1_000 + actor, "login": format!("user{actor}"),
            "display_login": format!("user{actor}"), "gravatar_id": "",
            "url": format!("https://api.github.com/users/user{actor}"),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?", 1_000 + actor),
        },
        "repo": { "id": 42, "name": "drowl/drowl", "url": "https://api.github.com/repos/drowl/drowl" },
        "payload": {
            "action": "created",
            "issue": { "number": 1 + n % 500, "title": format!("Issue {}", 1 + n % 500) },
            "comment": {
                "id": 2_000_000 + n, "body": body,
                "html_url": format!("https://github.com/drowl/drowl/issues/{}#issuecomment-{}", 1 + n % 500, 2_000_000 + n),
            },
        },
        "public": true,
        "created_at": created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// The row the host writes for `item` (what the github plugin and `jobs::ingest` produce).
fn row(item: &serde_json::Value) -> Result<NewEvent> {
    let external_id = item["id"].as_str().context("id")?.to_owned();
    let occurred_at: DateTime<Utc> = item["created_at"].as_str().context("time")?.parse()?;
    Ok(NewEvent {
        id: drowl_host::jobs::ids::event_id("github", &external_id, occurred_at),
        source: "github".into(),
        external_id,
        event_type: "comment".into(),
        occurred_at,
        raw_payload: item.clone(),
        storage_key: None,
        text: item["payload"]["comment"]["body"]
            .as_str()
            .map(str::to_owned),
        actor: Some(("github".into(), item["actor"]["id"].to_string())),
        plugin_id: "github".into(),
        plugin_version: "0.1.0".into(),
        correlation_id: Some("bench".into()),
    })
}

/// One page as `jobs::ingest` names it: a raw-batch key from a digest of the event ids,
/// each row's `storage_key` pointing at its line.
fn page_key(page: &mut [NewEvent]) -> Result<ObjectKey> {
    let mut h = sha2::Sha256::new();
    for e in page.iter() {
        h.update(e.id.as_bytes());
    }
    let day = page
        .iter()
        .map(|e| e.occurred_at)
        .max()
        .unwrap_or_default()
        .date_naive();
    let key = ObjectKey::raw_batch("github", "github", day, &hex::encode(&h.finalize()[..16]))?;
    for (line, e) in page.iter_mut().enumerate() {
        e.storage_key = Some(format!("{}#{line}", key.as_str()));
    }
    Ok(key)
}

/// Time spent in each step of [`store_page`]: S3 put, identities, event rows, cursor.
type Steps = [Duration; 4];

/// The host's store path for one page, in `jobs::ingest`'s order: payloads, identities,
/// rows, cursor. Returns the rows inserted and the time each step took.
async fn store_page(storage: &Storage, key: &ObjectKey, page: &[NewEvent]) -> Result<(u64, Steps)> {
    let mut steps = Steps::default();
    let mut t = Instant::now();
    let mut lap = |i: usize| {
        steps[i] += t.elapsed();
        t = Instant::now();
    };
    let mut body = Vec::with_capacity(page.len() * 3_000);
    for e in page {
        serde_json::to_writer(&mut body, &e.raw_payload)?;
        body.push(b'\n');
    }
    storage
        .objects
        .put(key, Bytes::from(body), "application/x-ndjson")
        .await?;
    lap(0);
    let mut actors: BTreeMap<(String, String), IdentityRecord> = BTreeMap::new();
    for e in page {
        if let Some((p, u)) = &e.actor {
            actors.insert(
                (p.clone(), u.clone()),
                IdentityRecord {
                    platform: p.clone(),
                    platform_user_id: u.clone(),
                    platform_username: e.raw_payload["actor"]["login"].as_str().map(str::to_owned),
                    display_name: None,
                    profile_url: None,
                    avatar_url: e.raw_payload["actor"]["avatar_url"]
                        .as_str()
                        .map(str::to_owned),
                    metadata: serde_json::json!({}),
                },
            );
        }
    }
    let identities: Vec<IdentityRecord> = actors.into_values().collect();
    storage.events.upsert_identities(&identities).await?;
    lap(1);
    let outcome = storage.events.insert_events(page).await?;
    lap(2);
    storage
        .kv
        .set(CURSOR_NAMESPACE, "github/bench", key.as_str().as_bytes())
        .await?;
    lap(3);
    Ok((outcome.inserted, steps))
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

/// The rows as `COPY ... (FORMAT text)` input for `psql \copy`.
fn copy_file(rows: &[NewEvent]) -> Result<tempfile::NamedTempFile> {
    let mut f = tempfile::NamedTempFile::new()?;
    let mut buf = Vec::new();
    for e in rows {
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

/// CPU time (user + system) of this process and of the children it has waited for
/// (`psql`), in seconds, from /proc (Linux, 100 Hz ticks): the client's work, as opposed
/// to PostgreSQL's and moto's on the same cores.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let mut ticks = 0u64;
            // utime, stime, cutime, cstime
            for i in 11..=14 {
                ticks += rest.get(i)?.parse::<u64>().ok()?;
            }
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

/// `S3_*` from the environment, or a moto_server of our own with a fresh bucket.
async fn s3() -> Result<(S3Config, Option<Moto>)> {
    if let Some(cfg) = S3Config::from_env()? {
        return Ok((cfg, None));
    }
    let venv = root().join(".venv/bin/moto_server");
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
                "starting {} (set S3_ENDPOINT etc. to use another server)",
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
    S3Store::create_bucket(&cfg).await?;
    Ok((cfg, Some(moto)))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// An executor over `storage` with one plugin installed, as the daemon builds it.
async fn executor(storage: &Storage, plugin: &Path, policy: &HostPolicy) -> Result<Executor> {
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(root().join("target/drowl-test-cache")),
        ..EngineSettings::default()
    })?;
    let loaded = runtime.load_file(plugin).await?;
    let mut registry = Registry::default();
    registry.insert(ReadyPlugin::prepare(loaded, policy, storage)?)?;
    Ok(Executor::new(runtime, storage.clone(), registry))
}

/// A fixture tree the fixture server serves as `GET /users/bench/events/public`: the
/// items in pages of 30, as GitHub records them.
fn github_feed(items: &[serde_json::Value]) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let feed = dir.path().join("base/users/bench/events/public");
    std::fs::create_dir_all(&feed)?;
    for (i, chunk) in items.chunks(fixture_server::RECORDED_PER_PAGE).enumerate() {
        std::fs::write(
            feed.join(format!("page-{}.json", i + 1)),
            serde_json::to_vec(chunk)?,
        )?;
    }
    Ok(dir)
}

struct Table {
    cpu_mark: f64,
}

impl Table {
    fn start(&mut self) -> Instant {
        self.cpu_mark = cpu_secs();
        Instant::now()
    }

    /// Prints a row and returns its events per second.
    fn row(&mut self, name: &str, events: u64, started: Instant) -> f64 {
        let d = started.elapsed();
        let cpu = cpu_secs() - self.cpu_mark;
        let rate = events as f64 / d.as_secs_f64();
        println!(
            "{name:<66} {events:>7} {:>8.2} {rate:>9.0} {:>9.2}s",
            d.as_secs_f64(),
            cpu
        );
        rate
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    let nums: Vec<usize> = argv
        .iter()
        .skip(1)
        .map(|a| a.parse().with_context(|| format!("{a:?} is not a number")))
        .collect::<Result<_>>()?;
    let pages = nums.first().copied().unwrap_or(10).max(1);
    let per_page = nums.get(1).copied().unwrap_or(1_000).max(1);
    let github_events = nums.get(2).copied().unwrap_or(1_000).max(1);

    let admin = std::env::var("DROWL_BENCH_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin_conn = PgConnection::connect(&admin)
        .await
        .with_context(|| format!("PostgreSQL admin URL {admin}"))?;
    let db = format!("drowl_bench_{}", uuid::Uuid::new_v4().simple());
    admin_conn
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&db);
    let result = bench(&argv, url.as_str(), pages, per_page, github_events).await;
    admin_conn
        .execute(format!("DROP DATABASE {db} WITH (FORCE)").as_str())
        .await?;
    result
}

async fn bench(
    argv: &[String],
    url: &str,
    pages: usize,
    per_page: usize,
    github_events: usize,
) -> Result<()> {
    let total = pages * per_page;
    let (s3cfg, _moto) = s3().await?;
    let data_dir = tempfile::tempdir()?;
    let config = StorageConfig {
        postgres: Some(PostgresConfig::new(url)),
        s3: Some(s3cfg.clone()),
        migrate_on_start: true,
    };
    let storage = storage::open(&config, data_dir.path()).await?;
    let mut check = PgConnection::connect(url).await?;
    let pg_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut check)
        .await?;

    let items: Vec<serde_json::Value> = (0..total.max(github_events)).map(github_item).collect();
    let mut rows: Vec<NewEvent> = items[..total].iter().map(row).collect::<Result<_>>()?;
    let mut keys = Vec::with_capacity(pages);
    for page in rows.chunks_mut(per_page) {
        keys.push(page_key(page)?);
    }
    let sizes: Vec<usize> = items[..total]
        .iter()
        .map(|i| serde_json::to_string(i).map(|s| s.len()).unwrap_or(0))
        .collect();
    let (min, max) = (
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0),
    );
    let avg = sizes.iter().sum::<usize>() / sizes.len().max(1);

    println!("$ {}", argv.join(" "));
    let build = if cfg!(debug_assertions) {
        "dev build: unoptimised but for cranelift and wasmtime (figures not comparable: use --release)"
    } else {
        "drowl-host built optimised (debug assertions off)"
    };
    println!(
        "drowl-host ingest path into PostgreSQL {pg_version} + S3 ({}); {build}; {} cores",
        s3cfg.endpoint,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "rows: {pages} pages of {per_page} GitHub events, payload {min}-{max} B (avg {avg} B); \
         events table with all of drowl's indexes; PostgreSQL and S3 on the same machine\n"
    );
    println!(
        "{:<66} {:>7} {:>8} {:>9} {:>10}",
        "run", "events", "seconds", "events/s", "client CPU"
    );

    let reset = || async {
        sqlx::query("TRUNCATE events, plugin_kv CASCADE")
            .execute(&mut PgConnection::connect(url).await?)
            .await?;
        sqlx::query("VACUUM ANALYZE events")
            .execute(&mut PgConnection::connect(url).await?)
            .await?;
        anyhow::Ok(())
    };
    let mut table = Table { cpu_mark: 0.0 };

    // 1. psql \copy of the same rows.
    reset().await?;
    let file = copy_file(&rows)?;
    let started = table.start();
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c"])
        .arg(format!(
            "\\copy events ({COLUMNS}) FROM '{}'",
            file.path().display()
        ))
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql \\copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let copy_eps = table.row(
        "psql \\copy, same rows (one COPY, no conflict handling)",
        total as u64,
        started,
    );

    // 2. The host's store path on what storage::open returned.
    reset().await?;
    let started = table.start();
    let mut inserted = 0;
    let mut spent = Steps::default();
    for (page, key) in rows.chunks(per_page).zip(&keys) {
        let (n, steps) = store_page(&storage, key, page).await?;
        inserted += n;
        for (a, b) in spent.iter_mut().zip(steps) {
            *a += b;
        }
    }
    let store_eps = table.row(
        &format!("host store path: S3 object + identities + rows + cursor, {per_page}/page"),
        inserted,
        started,
    );
    println!(
        "  of which: NDJSON + S3 put {:.2} s, identities {:.2} s, event rows {:.2} s, cursor {:.2} s",
        spent[0].as_secs_f64(),
        spent[1].as_secs_f64(),
        spent[2].as_secs_f64(),
        spent[3].as_secs_f64()
    );
    if inserted != total as u64 {
        bail!("the store path inserted {inserted} of {total} rows");
    }
    let started = table.start();
    let mut again = 0;
    for (page, key) in rows.chunks(per_page).zip(&keys) {
        again += store_page(&storage, key, page).await?.0;
    }
    table.row(
        "  the same pages again (a retried job: every row exists)",
        total as u64,
        started,
    );
    if again != 0 {
        bail!("a re-run inserted {again} rows");
    }
    // As the daemon runs several jobs at once: pages of different jobs in flight together.
    reset().await?;
    let started = table.start();
    let shared = &storage;
    let inserted: u64 =
        futures::stream::iter(rows.chunks(per_page).zip(&keys))
            .map(|(page, key)| async move {
                Ok::<_, anyhow::Error>(store_page(shared, key, page).await?.0)
            })
            .buffer_unordered(IN_FLIGHT)
            .try_fold(0, |sum, n| async move { Ok(sum + n) })
            .await?;
    let store4_eps = table.row(
        &format!("host store path, {IN_FLIGHT} pages in flight (concurrent jobs)"),
        inserted,
        started,
    );

    // 3. The executor with the hostile plugin's `ok` mode.
    reset().await?;
    let hostile = executor(
        &storage,
        Path::new(drowl_test_artifacts::HOSTILE_PLUGIN),
        &HostPolicy::default(),
    )
    .await?;
    let job = JobRequest::from_value(
        "bench-hostile",
        &serde_json::json!({ "type": "event_ingestion", "name": "bench",
            "input": { "pluginId": "hostile", "mode": "ok", "count": per_page, "pages": pages } }),
    )?;
    let started = table.start();
    let done = hostile
        .execute(&job, None)
        .await
        .map_err(|f| anyhow::anyhow!("hostile run failed: {}", f.failure))?;
    let hostile_eps = table.row(
        &format!("executor, hostile plugin `ok` ({per_page}/page, ~100 B payloads)"),
        done.output["eventsStored"].as_u64().unwrap_or(0),
        started,
    );

    // 4. The executor with the github plugin over a generated feed.
    reset().await?;
    let feed = github_feed(&items[..github_events])?;
    let (_, api) = fixture_server::start_with(fixture_server::Options::new(feed.path())).await?;
    let base = api.base_url();
    let mut policy = HostPolicy {
        default_grants: vec![base.clone()],
        allowed_networks: vec!["127.0.0.1/32".parse()?],
        ..HostPolicy::default()
    };
    policy.plugins.insert(
        "github".into(),
        PluginSettings {
            config: [
                ("api-base-url".to_owned(), base.clone()),
                ("per-page".to_owned(), "100".to_owned()),
            ]
            .into(),
            grants: vec![],
            ..PluginSettings::default()
        },
    );
    let github = executor(
        &storage,
        Path::new(drowl_test_artifacts::GITHUB_PLUGIN),
        &policy,
    )
    .await?;
    let job = JobRequest::from_value(
        "bench-github",
        &serde_json::json!({ "type": "event_ingestion", "name": "github-events",
            "input": { "pluginId": "github", "source": "github", "user": "bench" } }),
    )?;
    let started = table.start();
    let done = github
        .execute(&job, None)
        .await
        .map_err(|f| anyhow::anyhow!("github run failed: {}", f.failure))?;
    let github_eps = table.row(
        "executor, github plugin, generated feed (100/page, 1-5 KB, HTTP)",
        done.output["eventsStored"].as_u64().unwrap_or(0),
        started,
    );
    api.shutdown().await?;
    println!(
        "BENCH ingest.copy_eps={copy_eps:.0} ingest.store_eps={store_eps:.0} \
         ingest.store4_eps={store4_eps:.0} ingest.hostile_eps={hostile_eps:.0} \
         ingest.github_eps={github_eps:.0} ingest.github_events={github_events}"
    );
    println!(
        "\nclient CPU: this process (host and plugins; in the github run also the fixture \
         server) or psql; PostgreSQL and moto share the same cores."
    );
    Ok(())
}
