//! The real plugins through the real runtime on production storage: a fresh PostgreSQL
//! database on the machine's server, a moto_server process as S3, and the recorded GitHub
//! API on loopback. Every assertion about what was stored is SQL against drowl's tables
//! or a read from the bucket, not the host's own view of them.
//!
//! Outages are real: moto_server is killed, or the TCP proxy in front of PostgreSQL or
//! S3 is closed (the proxy keeps S3's state across an "outage", as MinIO would, where a
//! restarted moto starts empty).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use drowl_host::jobs::{HostPolicy, PluginSettings, Retry};
use drowl_host::storage::postgres::PostgresConfig;
use drowl_host::storage::s3::{S3Config, S3Store};
use drowl_host::storage::{
    self, EventFilter, EventStore, IdentityLinkRecord, IdentityRecord, KeywordMatchRecord,
    KeywordRecord, NewEvent, ObjectKey, ObjectStore, Storage, StorageConfig, StorageError,
    StoredEvent, WriteOutcome,
};
use fixture_server::{Options, ServerHandle};
use serde_json::json;
use sqlx::PgPool;

use crate::support::*;
use drowl_testkit::storage::{S3Server, TcpProxy, TestDb, free_port};

/// octocat's recorded feed: 30 + 30 + 17 events.
const OCTOCAT_EVENTS: i64 = 77;
const OCTOCAT_PAGES: usize = 3;

async fn github_api() -> ServerHandle {
    fixture_server::start_with(Options::new(fixture_server::github_fixtures()))
        .await
        .unwrap()
        .1
}

/// The github plugin pointed at the fixture server: its origin granted, loopback allowed.
fn github_policy(api: &str) -> HostPolicy {
    let mut p = HostPolicy {
        default_grants: vec![api.to_owned()],
        allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
        ..HostPolicy::default()
    };
    p.plugins.insert(
        "github".into(),
        PluginSettings {
            config: [("api-base-url".to_owned(), api.to_owned())].into(),
            grants: vec![],
            ..PluginSettings::default()
        },
    );
    p
}

fn octocat_job() -> serde_json::Value {
    json!({ "type": "event_ingestion", "name": "github-events",
            "input": { "pluginId": "github-plugin", "source": "github", "user": "octocat" } })
}

fn keyword_job() -> serde_json::Value {
    json!({ "type": "keyword_extraction", "name": "extract-keywords",
            "input": { "keywords": ["TypeScript", "Rust", "WebAssembly", "React"] } })
}

/// The keywords [`keyword_job`] names, as drowl's API would have stored them (a job only
/// selects tracked keywords; it never adds any).
async fn track_keyword_job_terms(storage: &Storage) {
    let rows = ["TypeScript", "Rust", "WebAssembly", "React"]
        .map(|t| tracked(&format!("kw-{}", t.to_lowercase()), t, "word_boundary"));
    storage.events.upsert_keywords(&rows).await.unwrap();
}

/// A bucket of its own on `server`.
async fn fresh_bucket(endpoint: &str) -> S3Config {
    let cfg = S3Config::new(
        endpoint,
        format!("drowl-e2e-{}", uuid::Uuid::new_v4().simple()),
        "drowl-test",
        "drowl-test-secret",
    );
    S3Store::create_bucket(&cfg).await.expect("create bucket");
    cfg
}

/// What the daemon would build from `DATABASE_URL` and `S3_*`, with a short acquire
/// timeout so the outage tests fail within seconds.
fn production(db_url: &str, s3: &S3Config, migrate_on_start: bool) -> StorageConfig {
    let mut pg = PostgresConfig::new(db_url);
    pg.acquire_timeout = Duration::from_secs(3);
    StorageConfig {
        postgres: Some(pg),
        s3: Some(s3.clone()),
        migrate_on_start,
    }
}

async fn open(cfg: &StorageConfig) -> Storage {
    let dir = tempfile::tempdir().unwrap();
    // Nothing may land in the data dir when both services are configured; the directory
    // is dropped right away to make sure nothing depends on it.
    storage::open(cfg, dir.path()).await.expect("open storage")
}

async fn pool(db: &TestDb) -> PgPool {
    PgPool::connect(&db.url).await.expect("connect for checks")
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

async fn bucket_keys(s3: &S3Store) -> Vec<String> {
    let out = s3
        .client()
        .list_objects_v2()
        .bucket(s3.bucket())
        .send()
        .await
        .expect("list bucket");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Every event row is unique, points at an NDJSON object in the bucket, and the line it
/// names is the row's `raw_payload`. Returns the number of rows.
async fn assert_rows_point_at_their_payloads(pool: &PgPool, s3: &S3Store) -> i64 {
    let rows: Vec<(String, Option<String>, serde_json::Value)> =
        sqlx::query_as("SELECT id, storage_key, raw_payload FROM events ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut bodies: HashMap<String, String> = HashMap::new();
    for (id, storage_key, payload) in &rows {
        let storage_key = storage_key
            .as_deref()
            .unwrap_or_else(|| panic!("event {id} has no storage_key"));
        let (key, line) = storage_key.split_once('#').expect("key#line");
        assert!(key.starts_with("plugins/github/raw/github/"), "{key}");
        if !bodies.contains_key(key) {
            let object = s3
                .get(&ObjectKey::parse(key).unwrap())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("event {id} points at {key}, which is not in S3"));
            bodies.insert(key.to_owned(), String::from_utf8(object.to_vec()).unwrap());
        }
        let text = bodies[key]
            .lines()
            .nth(line.parse().unwrap())
            .unwrap_or_else(|| panic!("{key} has no line {line}"));
        let raw: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(&raw, payload, "{storage_key} is not event {id}'s payload");
    }
    let distinct = scalar(
        pool,
        "SELECT count(DISTINCT (source, external_id)) FROM events",
    )
    .await;
    assert_eq!(distinct, rows.len() as i64, "an event is stored twice");
    rows.len() as i64
}

/// The whole ingestion and keyword path on PostgreSQL + S3, checked with SQL, and the
/// same jobs on embedded storage giving the same results.
#[tokio::test]
async fn github_ingestion_and_keywords_land_in_postgres_and_s3() {
    let db = TestDb::create().await;
    let s3server = S3Server::start().await;
    let s3cfg = fresh_bucket(&s3server.endpoint).await;
    let api = github_api().await;
    let github = component("github-plugin");
    let keywords = component("keywords-plugin");
    let plugins: [&Path; 2] = [&github, &keywords];

    // A fresh database without `--migrate` is refused, saying what to run.
    let err = storage::open(
        &production(&db.url, &s3cfg, false),
        tempfile::tempdir().unwrap().path(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, StorageError::Config(m) if m.contains("DATABASE_URL") && m.contains("drowl-host migrate")),
        "{err}"
    );
    let storage = open(&production(&db.url, &s3cfg, true)).await;
    let exec = executor_with(storage, &plugins, github_policy(&api.base_url())).await;
    let pool = pool(&db).await;
    let s3 = S3Store::connect(&s3cfg).await.unwrap();

    let first = exec
        .execute(&job("gh-prod-1", octocat_job()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(first["eventsStored"], OCTOCAT_EVENTS, "{first}");
    assert_eq!(first["pages"], OCTOCAT_PAGES);
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM events WHERE source = 'github' AND plugin_id = 'github' \
             AND correlation_id = 'gh-prod-1' AND external_id IS NOT NULL"
        )
        .await,
        OCTOCAT_EVENTS
    );
    assert_eq!(
        assert_rows_point_at_their_payloads(&pool, &s3).await,
        OCTOCAT_EVENTS
    );
    assert_eq!(
        bucket_keys(&s3).await.len(),
        OCTOCAT_PAGES,
        "one object per page"
    );
    assert!(
        scalar(
            &pool,
            "SELECT count(*) FROM identities WHERE platform = 'github'"
        )
        .await
            >= 1
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM events e LEFT JOIN identities i \
             ON i.platform = e.actor_platform AND i.platform_user_id = e.actor_platform_user_id \
             WHERE e.actor_platform IS NOT NULL AND i.id IS NULL"
        )
        .await,
        0,
        "every actor has an identity row"
    );
    // The cursor went to PostgreSQL's plugin_kv, under the host's namespace.
    let cursors: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT key, value FROM plugin_kv WHERE namespace = 'drowl-host/cursors'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(cursors.len(), 1, "{cursors:?}");
    assert!(cursors[0].0.starts_with("github/"), "{}", cursors[0].0);
    assert_eq!(
        first["cursor"].as_str(),
        Some(String::from_utf8(cursors[0].1.clone()).unwrap().as_str())
    );

    track_keyword_job_terms(exec.storage()).await;
    let kw = exec
        .execute(&job("kw-prod-1", keyword_job()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(kw["eventsScanned"], OCTOCAT_EVENTS, "{kw}");
    let stored = kw["matchesStored"].as_i64().unwrap();
    assert!(stored > 0, "{kw}");
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM keyword_matches").await,
        stored
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM keyword_matches m JOIN events e ON e.id = m.event_id \
             WHERE m.plugin_id = 'keywords'"
        )
        .await,
        stored
    );

    // Re-running both from scratch stores nothing twice.
    let mut again = octocat_job();
    again["input"]["reset"] = json!(true);
    let rerun = exec
        .execute(&job("gh-prod-2", again), None)
        .await
        .unwrap()
        .output;
    assert_eq!(rerun["eventsStored"], 0, "{rerun}");
    assert_eq!(rerun["duplicates"], OCTOCAT_EVENTS);
    let kw2 = exec
        .execute(&job("kw-prod-2", keyword_job()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(kw2["matchesStored"], 0, "{kw2}");
    assert_eq!(kw2["matchesExisting"], stored);
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM events").await,
        OCTOCAT_EVENTS
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM keyword_matches").await,
        stored
    );
    assert_eq!(
        bucket_keys(&s3).await.len(),
        OCTOCAT_PAGES,
        "retries rewrite the same keys"
    );

    // Embedded storage gives the same events, keys and matches.
    let dir = tempfile::tempdir().unwrap();
    let embedded = executor(dir.path(), &plugins, github_policy(&api.base_url())).await;
    embedded
        .execute(&job("gh-emb", octocat_job()), None)
        .await
        .unwrap();
    track_keyword_job_terms(embedded.storage()).await;
    let kw_emb = embedded
        .execute(&job("kw-emb", keyword_job()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(kw_emb["matchesByKeyword"], kw["matchesByKeyword"]);
    let ours = sorted(exec.storage().events.as_ref()).await;
    let theirs = sorted(embedded.storage().events.as_ref()).await;
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            (&a.id, &a.storage_key, &a.raw_payload, &a.text, &a.actor),
            (&b.id, &b.storage_key, &b.raw_payload, &b.text, &b.actor)
        );
        assert_eq!(a.occurred_at, b.occurred_at);
    }
    api.shutdown().await.unwrap();
}

/// Security matrix row 28 on PostgreSQL: inline keywords select tracked rows by term,
/// case-insensitively, with the stored row's strategy and id; an inline id never rewrites a
/// row; unknown terms are matched and reported; `keywords` is never written, and
/// `keyword_matches` only ever references its rows.
#[tokio::test]
async fn inline_keywords_resolve_against_postgres_and_never_write_it() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        postgres: Some(PostgresConfig::new(&db.url)),
        s3: None,
        migrate_on_start: true,
    };
    let storage = storage::open(&cfg, dir.path()).await.expect("open storage");
    storage
        .events
        .upsert_keywords(&[
            tracked("kw-rust", "Rust", "word_boundary"),
            // "ent" as a substring is in every "event"; as a word, in none.
            tracked("kw-ent", "ent", "substring"),
        ])
        .await
        .unwrap();
    let (hostile, keywords) = (component("hostile-plugin"), component("keywords-plugin"));
    let exec = executor_with(storage, &[&hostile, &keywords], HostPolicy::default()).await;
    let pool = pool(&db).await;
    let ingest = json!({ "type": "event_ingestion", "name": "paging",
        "input": { "pluginId": "hostile", "mode": "ok", "count": 4, "pages": 2 } });
    exec.execute(&job("ingest", ingest), None).await.unwrap();
    let rows = || async {
        sqlx::query_scalar::<_, String>("SELECT to_jsonb(k)::text FROM keywords k ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let before = rows().await;
    assert_eq!(before.len(), 2);

    let extract = json!({ "type": "keyword_extraction", "name": "extract-keywords",
        "input": { "keywords": [
            "rUST",
            { "id": "kw-ent", "term": "mentions", "matchStrategy": "substring",
              "category": "custom", "synonyms": ["event"] },
            { "term": "ENT", "matchStrategy": "word_boundary" },
            "nowhere"
        ] } });
    let out = exec
        .execute(&job("kw-1", extract.clone()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(
        out["matchesByKeyword"],
        json!({ "Rust": 8, "ent": 8, "mentions": 8 }),
        "{out}"
    );
    assert_eq!(
        out["unknownKeywords"],
        json!([{ "term": "mentions", "matches": 8 }, { "term": "nowhere", "matches": 0 }])
    );
    assert_eq!(out["matchesStored"], 16, "{out}");
    assert_eq!(rows().await, before, "a job wrote the keywords table");
    let per_keyword: Vec<(String, i64)> = sqlx::query_as(
        "SELECT keyword_id, count(*) FROM keyword_matches GROUP BY keyword_id ORDER BY keyword_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        per_keyword,
        [("kw-ent".to_owned(), 8), ("kw-rust".to_owned(), 8)]
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM keyword_matches m LEFT JOIN keywords k ON k.id = m.keyword_id \
             WHERE k.id IS NULL"
        )
        .await,
        0,
        "a stored match references no keyword"
    );
    let again = exec
        .execute(&job("kw-2", extract), None)
        .await
        .unwrap()
        .output;
    assert_eq!(again["matchesStored"], 0, "{again}");
    assert_eq!(again["matchesExisting"], 16, "{again}");
    assert_eq!(rows().await, before);
}

async fn sorted(events: &dyn EventStore) -> Vec<StoredEvent> {
    events
        .list_events(&EventFilter::default(), None, 1000)
        .await
        .unwrap()
}

/// The key-value import writes to PostgreSQL's `plugin_kv`, in the plugin's namespace.
#[tokio::test]
async fn the_kv_import_is_backed_by_postgres() {
    let db = TestDb::create().await;
    let s3server = S3Server::start().await;
    let s3cfg = fresh_bucket(&s3server.endpoint).await;
    let hostile = component("hostile-plugin");
    let exec = executor_with(
        open(&production(&db.url, &s3cfg, true)).await,
        &[&hostile],
        HostPolicy::default(),
    )
    .await;
    let kv_job = json!({ "type": "event_ingestion", "name": "kv", "input": { "pluginId": "hostile", "mode": "kv" } });
    let pool = pool(&db).await;
    for n in 1..=2 {
        exec.execute(&job(&format!("kv-{n}"), kv_job.clone()), None)
            .await
            .unwrap();
        let value: Vec<u8> = sqlx::query_scalar(
            "SELECT value FROM plugin_kv WHERE namespace = 'hostile' AND key = 'counter'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(value, n.to_string().into_bytes());
    }
}

/// Two workers (separate pools, separate S3 clients) run the same job at the same time:
/// each event is stored once, and the objects are the same three keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_executors_running_the_same_job_store_each_event_once() {
    let db = TestDb::create().await;
    let s3server = S3Server::start().await;
    let s3cfg = fresh_bucket(&s3server.endpoint).await;
    let api = github_api().await;
    let github = component("github-plugin");
    let cfg = production(&db.url, &s3cfg, true);
    let a = executor_with(open(&cfg).await, &[&github], github_policy(&api.base_url())).await;
    let b = executor_with(open(&cfg).await, &[&github], github_policy(&api.base_url())).await;
    let same = job("gh-twice", octocat_job());
    let (ra, rb) = tokio::join!(a.execute(&same, None), b.execute(&same, None));
    let (ra, rb) = (ra.unwrap().output, rb.unwrap().output);
    assert_eq!(
        ra["eventsStored"].as_i64().unwrap() + rb["eventsStored"].as_i64().unwrap(),
        OCTOCAT_EVENTS,
        "{ra}\n{rb}"
    );
    let pool = pool(&db).await;
    let s3 = S3Store::connect(&s3cfg).await.unwrap();
    assert_eq!(
        assert_rows_point_at_their_payloads(&pool, &s3).await,
        OCTOCAT_EVENTS
    );
    assert_eq!(bucket_keys(&s3).await.len(), OCTOCAT_PAGES);
    api.shutdown().await.unwrap();
}

fn assert_retryable(err: &drowl_host::jobs::FailedJob, what: &str) {
    assert!(
        matches!(err.failure.retry(), Retry::Yes(_)),
        "{what}: {} ({})",
        err.failure,
        err.failure.code()
    );
    assert_eq!(
        err.failure.code(),
        "storage-unavailable",
        "{what}: {}",
        err.failure
    );
}

/// moto_server is killed before the run: the job fails as retryable and writes no row.
/// Once S3 is back, the retried job stores everything once.
#[tokio::test]
async fn s3_killed_before_the_run_fails_retryable_and_the_retry_completes() {
    let db = TestDb::create().await;
    // Killed and restarted here, so a server of its own.
    let mut s3server = S3Server::start_owned().await;
    let s3cfg = fresh_bucket(&s3server.endpoint).await;
    let api = github_api().await;
    let github = component("github-plugin");
    let exec = executor_with(
        open(&production(&db.url, &s3cfg, true)).await,
        &[&github],
        github_policy(&api.base_url()),
    )
    .await;
    let pool = pool(&db).await;

    s3server.stop();
    let started = std::time::Instant::now();
    let err = exec
        .execute(&job("gh-s3-down", octocat_job()), None)
        .await
        .unwrap_err();
    assert_retryable(&err, "S3 down");
    assert!(
        err.failure.to_string().contains("S3_ENDPOINT"),
        "{}",
        err.failure
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM events").await,
        0,
        "no row may be written before its payload is in S3"
    );

    // moto restarts empty; a persistent server would still have the bucket.
    s3server.restart().await;
    S3Store::create_bucket(&s3cfg).await.unwrap();
    let done = exec
        .execute(&job("gh-s3-down", octocat_job()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(done["eventsStored"], OCTOCAT_EVENTS, "{done}");
    let s3 = S3Store::connect(&s3cfg).await.unwrap();
    assert_eq!(
        assert_rows_point_at_their_payloads(&pool, &s3).await,
        OCTOCAT_EVENTS
    );
    api.shutdown().await.unwrap();
}

/// An object store that cuts S3 off (closes the proxy in front of it) just before the
/// `nth` write: the outage hits between two pages of one job.
struct CutBeforePut {
    inner: Arc<dyn ObjectStore>,
    proxy: Arc<tokio::sync::Mutex<TcpProxy>>,
    puts: std::sync::atomic::AtomicUsize,
    nth: usize,
}

#[async_trait]
impl ObjectStore for CutBeforePut {
    async fn put(
        &self,
        key: &ObjectKey,
        data: bytes::Bytes,
        content_type: &str,
    ) -> storage::Result<()> {
        let n = self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == self.nth {
            self.proxy.lock().await.stop().await;
        }
        self.inner.put(key, data, content_type).await
    }
    async fn get(&self, key: &ObjectKey) -> storage::Result<Option<bytes::Bytes>> {
        self.inner.get(key).await
    }
    async fn prefix_bytes(&self, prefix: &str) -> storage::Result<u64> {
        self.inner.prefix_bytes(prefix).await
    }
    fn describe(&self, key: &ObjectKey) -> String {
        self.inner.describe(key)
    }
    async fn ping(&self) -> storage::Result<()> {
        self.inner.ping().await
    }
    fn backend(&self) -> String {
        self.inner.backend()
    }
}

fn addr_of(url: &str) -> SocketAddr {
    let u = url::Url::parse(url).unwrap();
    let host = u.host_str().unwrap();
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{}", u.port_or_known_default().unwrap())
        .parse()
        .unwrap()
}

/// S3 goes away after page 1 is stored: the job fails as retryable, page 1's rows point
/// at objects that exist, no row of page 2 exists; after S3 returns the retry resumes from
/// the saved cursor and completes, nothing duplicated.
#[tokio::test]
async fn s3_lost_between_pages_leaves_no_dangling_row_and_the_retry_resumes() {
    let db = TestDb::create().await;
    let s3server = S3Server::start().await;
    let direct = fresh_bucket(&s3server.endpoint).await;
    let proxy = TcpProxy::start(addr_of(&s3server.endpoint)).await;
    let mut via_proxy = direct.clone();
    via_proxy.endpoint = format!("http://{}", proxy.addr);
    let proxy = Arc::new(tokio::sync::Mutex::new(proxy));
    let mut storage = open(&production(&db.url, &via_proxy, true)).await;
    storage.objects = Arc::new(CutBeforePut {
        inner: storage.objects.clone(),
        proxy: proxy.clone(),
        puts: Default::default(),
        nth: 2,
    });
    let api = github_api().await;
    let github = component("github-plugin");
    let exec = executor_with(storage, &[&github], github_policy(&api.base_url())).await;
    let pool = pool(&db).await;
    let s3 = S3Store::connect(&direct).await.unwrap();

    let err = exec
        .execute(&job("gh-s3-cut", octocat_job()), None)
        .await
        .unwrap_err();
    assert_retryable(&err, "S3 cut after page 1");
    assert_eq!(
        assert_rows_point_at_their_payloads(&pool, &s3).await,
        30,
        "page 1 is stored, page 2 is not"
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM plugin_kv WHERE namespace = 'drowl-host/cursors'"
        )
        .await,
        1,
        "page 1's cursor is saved"
    );

    proxy.lock().await.restart().await;
    let done = exec
        .execute(&job("gh-s3-cut", octocat_job()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(done["eventsStored"], OCTOCAT_EVENTS - 30, "{done}");
    assert_eq!(done["duplicates"], 0, "resumed after page 1: {done}");
    assert_eq!(
        assert_rows_point_at_their_payloads(&pool, &s3).await,
        OCTOCAT_EVENTS
    );
    assert_eq!(bucket_keys(&s3).await.len(), OCTOCAT_PAGES);
    api.shutdown().await.unwrap();
}

/// An event store that cuts PostgreSQL off (closes the proxy in front of it) just before
/// the first event batch: the page's payload is already in S3, its rows never land.
struct CutBeforeInsert {
    inner: Arc<dyn EventStore>,
    proxy: Arc<tokio::sync::Mutex<TcpProxy>>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl EventStore for CutBeforeInsert {
    async fn insert_events(&self, events: &[NewEvent]) -> storage::Result<WriteOutcome> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.proxy.lock().await.stop().await;
        }
        self.inner.insert_events(events).await
    }
    async fn list_events(
        &self,
        filter: &EventFilter,
        after_id: Option<&str>,
        limit: u32,
    ) -> storage::Result<Vec<StoredEvent>> {
        self.inner.list_events(filter, after_id, limit).await
    }
    async fn upsert_identities(&self, i: &[IdentityRecord]) -> storage::Result<WriteOutcome> {
        self.inner.upsert_identities(i).await
    }
    async fn insert_identity_links(
        &self,
        l: &[IdentityLinkRecord],
    ) -> storage::Result<WriteOutcome> {
        self.inner.insert_identity_links(l).await
    }
    async fn identity_id(&self, p: &str, u: &str) -> storage::Result<Option<String>> {
        self.inner.identity_id(p, u).await
    }
    async fn compute_daily_metrics(
        &self,
        range: &storage::DayRange,
    ) -> storage::Result<storage::DailyMetricsOutcome> {
        self.inner.compute_daily_metrics(range).await
    }
    async fn daily_metrics(
        &self,
        first: chrono::NaiveDate,
        last: chrono::NaiveDate,
    ) -> storage::Result<storage::DailyMetrics> {
        self.inner.daily_metrics(first, last).await
    }
    async fn link_identities(
        &self,
        a: &str,
        b: &str,
        confidence: &str,
        reason: &str,
    ) -> storage::Result<storage::LinkOutcome> {
        self.inner.link_identities(a, b, confidence, reason).await
    }
    async fn identities_after(
        &self,
        after: Option<&storage::IdentityPosition>,
        limit: u32,
    ) -> storage::Result<Vec<storage::KnownIdentity>> {
        self.inner.identities_after(after, limit).await
    }
    async fn find_indexed_identities(
        &self,
        plugin_id: &str,
        key: &str,
        limit: u32,
    ) -> storage::Result<Vec<storage::KnownIdentity>> {
        self.inner
            .find_indexed_identities(plugin_id, key, limit)
            .await
    }
    async fn save_resolution(
        &self,
        batch: &storage::ResolutionBatch,
    ) -> storage::Result<WriteOutcome> {
        self.inner.save_resolution(batch).await
    }
    async fn insert_keyword_matches(
        &self,
        m: &[KeywordMatchRecord],
    ) -> storage::Result<WriteOutcome> {
        self.inner.insert_keyword_matches(m).await
    }
    async fn active_keywords(&self) -> storage::Result<Vec<KeywordRecord>> {
        self.inner.active_keywords().await
    }
    async fn upsert_keywords(&self, k: &[KeywordRecord]) -> storage::Result<WriteOutcome> {
        self.inner.upsert_keywords(k).await
    }
    async fn ping(&self) -> storage::Result<()> {
        self.inner.ping().await
    }
    fn backend(&self) -> String {
        self.inner.backend()
    }
}

/// PostgreSQL refuses connections before a run, and again in the middle of one: both
/// runs fail as retryable within seconds, no row is half-written, and once PostgreSQL is
/// back the retry completes with every event once.
#[tokio::test]
async fn postgres_unreachable_fails_retryable_and_the_retry_completes() {
    let db = TestDb::create().await;
    let s3server = S3Server::start().await;
    let s3cfg = fresh_bucket(&s3server.endpoint).await;
    let mut proxy = TcpProxy::start(addr_of(&db.url)).await;
    let cfg = production(&db.url_via(proxy.addr), &s3cfg, true);
    let api = github_api().await;
    let github = component("github-plugin");
    let pool = pool(&db).await;
    let s3 = S3Store::connect(&s3cfg).await.unwrap();

    // At start-up, DATABASE_URL pointing at a closed port is refused by name.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = storage::open(
        &production(&db.url_via(closed), &s3cfg, false),
        tempfile::tempdir().unwrap().path(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, StorageError::Unavailable(m) if m.contains("DATABASE_URL")),
        "{err}"
    );

    // Connection refused before the run.
    let storage = open(&cfg).await;
    proxy.stop().await;
    let exec = executor_with(storage, &[&github], github_policy(&api.base_url())).await;
    let started = std::time::Instant::now();
    let err = exec
        .execute(&job("gh-pg-down", octocat_job()), None)
        .await
        .unwrap_err();
    assert_retryable(&err, "PostgreSQL refused");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(scalar(&pool, "SELECT count(*) FROM events").await, 0);
    proxy.restart().await;

    // Lost in the middle of the first page: its payload is in S3, its rows are not.
    let proxy = Arc::new(tokio::sync::Mutex::new(proxy));
    let mut storage = open(&cfg).await;
    storage.events = Arc::new(CutBeforeInsert {
        inner: storage.events.clone(),
        proxy: proxy.clone(),
        armed: true.into(),
    });
    let exec = executor_with(storage, &[&github], github_policy(&api.base_url())).await;
    let err = exec
        .execute(&job("gh-pg-cut", octocat_job()), None)
        .await
        .unwrap_err();
    assert_retryable(&err, "PostgreSQL lost mid-page");
    assert_eq!(scalar(&pool, "SELECT count(*) FROM events").await, 0);
    assert_eq!(
        bucket_keys(&s3).await.len(),
        1,
        "page 1's payload was written first"
    );

    proxy.lock().await.restart().await;
    let done = exec
        .execute(&job("gh-pg-cut", octocat_job()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(done["eventsStored"], OCTOCAT_EVENTS, "{done}");
    assert_eq!(
        assert_rows_point_at_their_payloads(&pool, &s3).await,
        OCTOCAT_EVENTS
    );
    assert_eq!(
        bucket_keys(&s3).await.len(),
        OCTOCAT_PAGES,
        "the retry rewrote page 1's object under the same key"
    );
    api.shutdown().await.unwrap();
}

/// `drowl-host migrate`: applies both migrations and says so, is harmless to re-run, and
/// refuses a missing or unreachable `DATABASE_URL` with exit code 2 and one line.
#[tokio::test]
async fn migrate_command_applies_once_and_explains_failures() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |url: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"));
        cmd.arg("migrate")
            .current_dir(dir.path())
            .env_remove("RUST_LOG");
        match url {
            Some(u) => cmd.env("DATABASE_URL", u),
            None => cmd.env_remove("DATABASE_URL"),
        };
        cmd.output().unwrap()
    };
    let first = run(Some(&db.url));
    let out = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{out}{}", stderr(&first));
    assert!(out.contains("applied 0001 drowl tables"), "{out}");
    assert!(out.contains("applied 0002 host tables"), "{out}");
    let again = run(Some(&db.url));
    let out = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{out}{}", stderr(&again));
    assert!(!out.contains("applied 0"), "{out}");
    assert!(out.contains("nothing to apply"), "{out}");
    // The schema is what the daemon checks for.
    let s3server = S3Server::start().await;
    let s3cfg = fresh_bucket(&s3server.endpoint).await;
    open(&production(&db.url, &s3cfg, false)).await;

    let missing = run(None);
    assert_eq!(missing.status.code(), Some(2));
    let err = stderr(&missing);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("DATABASE_URL is not set"), "{err}");

    let port = free_port();
    let refused = run(Some(&format!(
        "postgres://drowl:hunter2@127.0.0.1:{port}/drowl"
    )));
    assert_eq!(refused.status.code(), Some(2));
    let err = stderr(&refused);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "the password is never printed: {err}"
    );
}

/// `run-plugin --storage env` writes where drowl's variables say, and refuses a partial
/// S3 configuration by name.
#[tokio::test]
async fn run_plugin_uses_production_storage_when_asked() {
    let db = TestDb::create().await;
    let s3server = S3Server::start().await;
    let s3cfg = fresh_bucket(&s3server.endpoint).await;
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let jobf = job_file(
        dir.path(),
        "job.json",
        &json!({ "type": "event_ingestion", "name": "paging",
                 "input": { "mode": "ok", "count": 5, "pages": 2 } }),
    );
    let env: BTreeMap<&str, &str> = [
        ("DATABASE_URL", db.url.as_str()),
        ("S3_ENDPOINT", s3cfg.endpoint.as_str()),
        ("S3_BUCKET", s3cfg.bucket.as_str()),
        ("S3_ACCESS_KEY", s3cfg.access_key.as_str()),
        ("S3_SECRET_KEY", s3cfg.secret_key.as_str()),
    ]
    .into();
    let run = |storage: &str, env: &BTreeMap<&str, &str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"));
        cmd.args(["run-plugin", hostile.to_str().unwrap(), "--job"])
            .arg(&jobf)
            .args(["--data-dir", "data", "--storage", storage])
            .current_dir(dir.path())
            .env_remove("RUST_LOG");
        for k in [
            "DATABASE_URL",
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_ACCESS_KEY",
            "S3_SECRET_KEY",
        ] {
            match env.get(k) {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.output().unwrap()
    };

    // Not migrated yet: refused, saying what to run.
    let out = run("env", &env);
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("drowl-host migrate"),
        "{}",
        stderr(&out)
    );
    drowl_host::storage::postgres::PostgresStore::connect(&db.url)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();

    let out = run("env", &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["output"]["eventsStored"], 10);
    let pool = pool(&db).await;
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM events WHERE plugin_id = 'hostile'"
        )
        .await,
        10
    );
    let s3 = S3Store::connect(&s3cfg).await.unwrap();
    let keys = bucket_keys(&s3).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with("plugins/hostile/raw/test/")),
        "{keys:?}"
    );
    assert!(
        !dir.path().join("data/objects").exists() && !dir.path().join("data/drowl.db").exists(),
        "nothing embedded when both services are configured"
    );

    // The default is still embedded, whatever the environment says.
    let out = run("embedded", &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("data/drowl.db").exists());

    let mut partial = env.clone();
    partial.remove("S3_BUCKET");
    let out = run("env", &partial);
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("but S3_BUCKET is not"),
        "{}",
        stderr(&out)
    );
}

/// Issue #12: a `data_export` of stored events to the S3 server (moto_server) with the
/// `export` plugin, events in PostgreSQL: the parts and the manifest are read back from
/// the bucket and compared with what the filter selects.
#[tokio::test]
async fn an_export_to_s3_is_read_back_and_compared() {
    let db = TestDb::create().await;
    let s3server = S3Server::start().await;
    let s3cfg = fresh_bucket(&s3server.endpoint).await;
    let storage = open(&production(&db.url, &s3cfg, true)).await;
    let export = component("export-plugin");
    let exec = executor_with(storage, &[&export], HostPolicy::default()).await;
    let storage = exec.storage();
    crate::export::seed(storage, &drowl_host::storage::conformance::tag()).await;
    let input = json!({ "pluginId": "export", "source": "zenn", "keyword": "Rust" });
    let out = exec
        .execute(
            &job(
                "exp-s3",
                json!({ "type": "data_export", "name": "export-events", "input": input }),
            ),
            None,
        )
        .await
        .unwrap()
        .output;
    let want = crate::export::selected(
        storage,
        &EventFilter {
            source: Some("zenn".into()),
            keyword: Some("rust".into()),
            ..EventFilter::default()
        },
    )
    .await;
    assert!(!want.is_empty());
    crate::export::check_export(storage, "exp-s3", &out, &want).await;
    let s3 = S3Store::connect(&s3cfg).await.unwrap();
    let keys = bucket_keys(&s3).await;
    assert!(
        keys.iter()
            .any(|k| k.ends_with("plugins/export/objects/exports/exp-s3/manifest.json")),
        "{keys:?}"
    );
    for l in out["locations"].as_array().unwrap() {
        let l = l.as_str().unwrap();
        assert!(keys.iter().any(|k| k.ends_with(l)), "{l} in {keys:?}");
    }
}
