//! The PostgreSQL backend against the machine's real server (127.0.0.1:5432, or
//! `DROWL_TEST_PG_ADMIN_URL`). Each test creates its own `drowl_test_<random>` database
//! and drops it afterwards, so tests run in parallel and leave nothing behind.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drowl_host::storage::conformance as tc;
use drowl_host::storage::postgres::{InsertMode, PostgresConfig, PostgresStore};
use drowl_host::storage::sqlite::SqliteStore;
use drowl_host::storage::{EventFilter, EventStore, KvStore, StorageError, WriteOutcome};
use drowl_testkit::storage::{TcpProxy, TestDb, admin_url, free_port};

async fn migrated(db: &TestDb, mode: InsertMode) -> Arc<PostgresStore> {
    let mut cfg = PostgresConfig::new(db.url.clone());
    cfg.insert_mode = mode;
    let store = PostgresStore::connect_with(&cfg).await.expect("connect");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

async fn count(store: &PostgresStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect(sql)
}

#[tokio::test]
async fn migrations_apply_from_empty_and_rerun_harmlessly() {
    let db = TestDb::create().await;
    let store = PostgresStore::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    // A second process racing the first is serialised by sqlx's advisory lock.
    let other = PostgresStore::connect(&db.url).await.unwrap();
    let (a, b) = tokio::join!(store.migrate(), other.migrate());
    a.unwrap();
    b.unwrap();
    for table in [
        "events",
        "identities",
        "identity_links",
        "keywords",
        "jobs",
        "plugins",
        "plugin_kv",
        "keyword_matches",
        "metrics_daily_events",
        "metrics_daily_keywords",
        "identity_index",
        "webhook_deliveries",
    ] {
        let n = count(
            &store,
            &format!("SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'"),
        )
        .await;
        assert_eq!(n, 1, "table {table}");
    }
    // drowl's columns keep their names; the host's additions are there.
    for col in [
        "id",
        "source",
        "event_type",
        "occurred_at",
        "ingested_at",
        "raw_payload",
        "storage_key",
        "plugin_id",
        "plugin_version",
        "correlation_id",
        "created_at",
        "external_id",
        "text",
        "actor_platform",
        "actor_platform_user_id",
    ] {
        let n = count(
            &store,
            &format!(
                "SELECT count(*) FROM information_schema.columns \
                 WHERE table_name = 'events' AND column_name = '{col}'"
            ),
        )
        .await;
        assert_eq!(n, 1, "events.{col}");
    }
    let gin = count(
        &store,
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE '%USING gin%'",
    )
    .await;
    assert_eq!(gin, 1, "drowl's JSONB GIN index on events");
    // Every file of migrations/ is applied, once.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .expect("migrations/")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert!(files >= 4, "{files} migrations");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM _sqlx_migrations WHERE success"
        )
        .await,
        i64::try_from(files).expect("a few files")
    );
}

/// What a PostgreSQL column holds, in SQLite's terms (`host/migrations-sqlite/0001_init.sql`
/// says how the embedded schema stores each kind: timestamps, JSON and arrays as text,
/// booleans as integers).
fn sqlite_kind(table: &str, column: &str, pg_type: &str) -> &'static str {
    match pg_type {
        "text" | "jsonb" | "ARRAY" | "timestamp with time zone" | "date" => "TEXT",
        "boolean" | "integer" | "bigint" => "INTEGER",
        "real" => "REAL",
        "bytea" => "BLOB",
        other => {
            panic!("{table}.{column}: no SQLite counterpart decided for PostgreSQL type {other}")
        }
    }
}

/// The two schemas the host's queries run against define the same tables and columns,
/// holding the same kinds of values: the PostgreSQL migrations (`migrations/`) and the
/// embedded SQLite schema (`host/migrations-sqlite/`). A column added to one and not the
/// other fails here, not in the first query that uses it.
#[tokio::test]
async fn the_sqlite_schema_defines_the_tables_and_columns_of_the_postgres_migrations() {
    let db = TestDb::create().await;
    let pg = PostgresStore::connect(&db.url).await.unwrap();
    pg.migrate().await.unwrap();
    let pg_columns: BTreeSet<(String, String, String)> =
        sqlx::query_as::<_, (String, String, String)>(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
        )
        .fetch_all(pg.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|(t, c, ty)| {
            let kind = sqlite_kind(&t, &c, &ty).to_owned();
            (t, c, kind)
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(&dir.path().join("drowl.db"))
        .await
        .unwrap();
    let lite_columns: BTreeSet<(String, String, String)> = sqlx::query_as(
        "SELECT m.name, p.name, upper(p.type) \
         FROM sqlite_schema AS m JOIN pragma_table_info(m.name) AS p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(lite.write_pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    lite.close().await;

    for table in [
        "events",
        "identities",
        "identity_links",
        "keywords",
        "keyword_matches",
        "plugin_kv",
        "jobs",
        "identity_index",
        "webhook_deliveries",
    ] {
        assert!(
            pg_columns.iter().any(|(t, _, _)| t == table),
            "the PostgreSQL migrations lack {table}: {pg_columns:?}"
        );
    }
    let only_pg: Vec<_> = pg_columns.difference(&lite_columns).collect();
    let only_lite: Vec<_> = lite_columns.difference(&pg_columns).collect();
    assert!(
        only_pg.is_empty() && only_lite.is_empty(),
        "the schemas disagree (table, column, kind):\n  only in migrations/: {only_pg:?}\n  \
         only in host/migrations-sqlite/: {only_lite:?}"
    );
}

#[tokio::test]
async fn migrations_extend_tables_drowl_created_first() {
    let db = TestDb::create().await;
    let store = PostgresStore::connect(&db.url).await.unwrap();
    // drowl's API created `events` (without the host's columns) and holds a row.
    sqlx::raw_sql(
        "CREATE TABLE events (id text PRIMARY KEY, source text NOT NULL, \
         event_type text NOT NULL, occurred_at timestamptz NOT NULL, \
         ingested_at timestamptz NOT NULL DEFAULT now(), raw_payload jsonb NOT NULL, \
         storage_key text, plugin_id text NOT NULL, plugin_version text NOT NULL, \
         correlation_id text, created_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO events (id, source, event_type, occurred_at, raw_payload, plugin_id, \
         plugin_version) VALUES ('old', 'github', 'star', now(), '{}', 'github-plugin', '1');",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let t = tc::tag();
    assert_eq!(
        store
            .insert_events(&tc::batch(&t, 3, 10))
            .await
            .unwrap()
            .inserted,
        3
    );
    assert_eq!(count(&store, "SELECT count(*) FROM events").await, 4);
}

#[tokio::test]
async fn postgres_store_follows_the_shared_rules() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Unnest).await;
    tc::run_all(store.clone(), store.clone()).await;
    tc::webhook_deliveries_are_stored_once(store.clone()).await;
}

/// `identity_links` read and edited with PostgreSQL's own SQL, for the link checks.
struct PgLinks(Arc<PostgresStore>);

#[async_trait::async_trait]
impl tc::ReadLinks for PgLinks {
    async fn links_between(&self, a: &str, b: &str) -> Vec<tc::StoredLink> {
        let rows: Vec<(String, String, String, String, f32, Option<String>, bool)> =
            sqlx::query_as(
                "SELECT identity_id_1, identity_id_2, confidence, link_source, \
                 confidence_score, plugin_id, is_active FROM identity_links \
                 WHERE (identity_id_1, identity_id_2) IN (($1, $2), ($2, $1)) \
                 ORDER BY is_active, created_at",
            )
            .bind(a)
            .bind(b)
            .fetch_all(self.0.pool())
            .await
            .unwrap();
        rows.into_iter()
            .map(
                |(one, two, confidence, source, score, plugin, active)| tc::StoredLink {
                    identity_id_1: one,
                    identity_id_2: two,
                    confidence,
                    link_source: source,
                    confidence_score: score,
                    plugin_id: plugin,
                    is_active: active,
                },
            )
            .collect()
    }
    async fn remove_links(&self, a: &str, b: &str) {
        sqlx::query(
            "UPDATE identity_links SET is_active = false \
             WHERE (identity_id_1, identity_id_2) IN (($1, $2), ($2, $1))",
        )
        .bind(a)
        .bind(b)
        .execute(self.0.pool())
        .await
        .unwrap();
    }
}

/// The resolution-batch and suggested-link rules every backend follows
/// (`tc::resolution_links_follow_the_rules`, `tc::suggested_links_never_revive_removed_ones`).
#[tokio::test]
async fn postgres_identity_resolution_follows_the_shared_rules() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Unnest).await;
    let read = PgLinks(store.clone());
    tc::resolution_links_follow_the_rules(&*store, &read).await;
    tc::suggested_links_never_revive_removed_ones(&*store, &read).await;
}

/// Identity resolution's batches and lookups are index scans. With sequential scans,
/// bitmap scans and sorts priced out, a batch read the (created_at, id "C") index could
/// not serve in order would still show a `Sort` (or another scan); the key lookup, with
/// sequential scans priced out, starts from identity_index's primary key.
#[tokio::test]
async fn identity_resolution_reads_use_their_indexes() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Unnest).await;
    let mut conn = store.pool().acquire().await.unwrap();
    sqlx::raw_sql("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan = |rows: Vec<(String,)>| rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n");
    let after = chrono::Utc::now();
    let batches = plan(
        sqlx::query_as(&format!(
            "EXPLAIN {}",
            include_str!("../src/storage/postgres/queries/identities_after.sql")
        ))
        .bind(Some(after))
        .bind("some-id")
        .bind(100_i64)
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
    );
    assert!(
        batches.contains("Index Scan using identities_created_at_id_idx")
            && !batches.contains("Sort"),
        "{batches}"
    );
    sqlx::raw_sql("RESET enable_bitmapscan; RESET enable_sort")
        .execute(&mut *conn)
        .await
        .unwrap();
    let find = plan(
        sqlx::query_as(&format!(
            "EXPLAIN {}",
            include_str!("../src/storage/postgres/queries/find_indexed_identities.sql")
        ))
        .bind("resolver")
        .bind("name:alice")
        .bind(10_i64)
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
    );
    assert!(find.contains("identity_index_pkey"), "{find}");
}

/// The same hand-counted daily metrics as the SQLite store (`tc::daily_metrics_are_counted_by_hand`).
#[tokio::test]
async fn postgres_daily_metrics_are_counted_by_hand() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Unnest).await;
    tc::daily_metrics_are_counted_by_hand(&*store).await;
}

/// A person's link lands as drowl's API reads it (ordered pair, `user_manual`, a score
/// for the confidence), is updated in place, and a removed link asked for again is
/// active again, the removed row kept.
#[tokio::test]
async fn manual_links_are_written_updated_and_reactivated() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Unnest).await;
    let [a, b, _] = tc::three_identities(&*store).await;
    let first = store
        .link_identities(&b, &a, "high", "asked")
        .await
        .unwrap();
    let rows = || async {
        sqlx::query_as::<_, (String, String, String, f32, String, bool)>(
            "SELECT identity_id_1, identity_id_2, confidence, confidence_score, link_source, \
             is_active FROM identity_links ORDER BY is_active, created_at",
        )
        .fetch_all(store.pool())
        .await
        .unwrap()
    };
    let got = rows().await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        (first.identity_id_1.as_str(), first.identity_id_2.as_str())
    );
    assert!(got[0].0 < got[0].1);
    assert_eq!(
        (got[0].2.as_str(), got[0].3, got[0].4.as_str(), got[0].5),
        ("high", 0.9, "user_manual", true)
    );
    assert!(
        !store
            .link_identities(&a, &b, "manual", "asked")
            .await
            .unwrap()
            .created
    );
    let got = rows().await;
    assert_eq!((got.len(), got[0].2.as_str()), (1, "manual"));
    count(&store, "WITH u AS (UPDATE identity_links SET is_active = false RETURNING 1) SELECT count(*) FROM u").await;
    assert!(
        store
            .link_identities(&a, &b, "low", "again")
            .await
            .unwrap()
            .created
    );
    let got = rows().await;
    assert_eq!(
        got.iter().map(|r| (r.2.as_str(), r.5)).collect::<Vec<_>>(),
        [("manual", false), ("low", true)]
    );
}

#[tokio::test]
async fn copy_mode_follows_the_event_rules() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Copy).await;
    tc::reinsert_is_idempotent(&*store).await;
    tc::concurrent_insert_of_one_batch(store.clone()).await;
    tc::list_events_filters_and_pages(&*store).await;
    // Characters COPY's text format must escape survive the round trip.
    let t = tc::tag();
    let mut e = tc::event(&t, 0, 1);
    e.text = Some("tab\there\nnewline \\backslash\r".into());
    e.raw_payload = serde_json::json!({"s": "a\\b\n\t\"q\"", "u": "\u{e9}\u{1F600}"});
    store.insert_events(std::slice::from_ref(&e)).await.unwrap();
    let got = store
        .list_events(
            &EventFilter {
                ids: Some(vec![e.id.clone()]),
                ..EventFilter::default()
            },
            None,
            1,
        )
        .await
        .unwrap();
    assert_eq!(got[0].text, e.text);
    assert_eq!(got[0].raw_payload, e.raw_payload);
}

#[tokio::test]
async fn ingest_reingest_and_concurrent_ingest_store_each_event_once() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Unnest).await;
    let t = tc::tag();
    // 1,000 events of 1-5 KB, as a real page of GitHub events.
    let batch: Arc<Vec<_>> = Arc::new(
        (0..1000)
            .map(|n| tc::event(&t, n, 1024 + (n * 37) % 4096))
            .collect(),
    );
    assert_eq!(
        store.insert_events(&batch).await.unwrap(),
        WriteOutcome {
            inserted: 1000,
            existing: 0
        }
    );
    assert_eq!(
        store.insert_events(&batch).await.unwrap(),
        WriteOutcome {
            inserted: 0,
            existing: 1000
        }
    );
    // Four workers ingest an overlapping batch at once, in different orders.
    let t2 = tc::tag();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let store = store.clone();
        let mut b: Vec<_> = (0..600).map(|n| tc::event(&t2, n, 2048)).collect();
        b.rotate_left(w * 150);
        tasks.push(tokio::spawn(async move {
            store.insert_events(&b).await.unwrap()
        }));
    }
    let mut inserted = 0;
    for h in tasks {
        inserted += h.await.unwrap().inserted;
    }
    assert_eq!(inserted, 600);
    assert_eq!(count(&store, "SELECT count(*) FROM events").await, 1600);
    assert_eq!(
        count(&store, "SELECT count(*) FROM (SELECT source, external_id FROM events GROUP BY 1, 2 HAVING count(*) > 1) d").await,
        0
    );
}

#[tokio::test]
async fn bad_data_is_invalid_not_retryable() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Unnest).await;
    let mut e = tc::event(&tc::tag(), 0, 1);
    e.text = Some("nul\0byte".into());
    let err = store.insert_events(&[e]).await.unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err}");
    let mut e = tc::event(&tc::tag(), 0, 1);
    e.raw_payload = serde_json::json!({"s": "nul\u{0}"});
    let err = store.insert_events(&[e]).await.unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn a_missing_schema_is_a_config_error() {
    let db = TestDb::create().await;
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let err = store
        .insert_events(&tc::batch(&tc::tag(), 1, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::Config(m) if m.contains("migrate")),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_or_refused_connections_are_explained() {
    // Nothing listens on this port: refused, quickly, naming DATABASE_URL.
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let started = Instant::now();
    let err = PostgresStore::connect(&url).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, StorageError::Unavailable(m) if m.contains("DATABASE_URL") && m.contains("127.0.0.1")),
        "{err}"
    );
    // Unknown role: the server answers, but refuses the credentials.
    let mut u = url::Url::parse(&admin_url()).unwrap();
    u.set_username("drowl_no_such_role").unwrap();
    u.set_password(Some("hunter2")).unwrap();
    let err = PostgresStore::connect(u.as_str()).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Config(m) if m.contains("DATABASE_URL")),
        "{err}"
    );
    assert!(
        !err.to_string().contains("hunter2"),
        "the password must not be echoed: {err}"
    );
    // Unknown database.
    u = url::Url::parse(&admin_url()).unwrap();
    u.set_path("drowl_no_such_database");
    let err = PostgresStore::connect(u.as_str()).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Config(m) if m.contains("does not exist")),
        "{err}"
    );
}

#[tokio::test]
async fn connection_refused_then_restored_and_the_job_retried() {
    let db = TestDb::create().await;
    let pg: std::net::SocketAddr = {
        let u = url::Url::parse(&db.url).unwrap();
        let host = u.host_str().unwrap().to_owned();
        tokio::net::lookup_host((host, u.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let mut proxy = TcpProxy::start(pg).await;
    let mut cfg = PostgresConfig::new(db.url_via(proxy.addr));
    cfg.acquire_timeout = Duration::from_secs(2);
    let store = Arc::new(PostgresStore::connect_with(&cfg).await.unwrap());
    store.migrate().await.unwrap();
    let t = tc::tag();
    let first = tc::batch(&t, 100, 1500);
    store.insert_events(&first).await.unwrap();
    store
        .set("plugin:github", "cursor", b"page-1")
        .await
        .unwrap();

    // The server goes away (listener closed, live connections cut).
    proxy.stop().await;
    let retry: Vec<_> = (0..200).map(|n| tc::event(&t, n, 1500)).collect();
    let started = Instant::now();
    let err = store.insert_events(&retry).await.unwrap_err();
    assert!(matches!(err, StorageError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed after {:?}",
        started.elapsed()
    );
    let err = store.get("plugin:github", "cursor").await.unwrap_err();
    assert!(matches!(err, StorageError::Unavailable(_)), "{err}");

    // It comes back; the same pool reconnects and the retried job completes exactly.
    proxy.restart().await;
    let out = store.insert_events(&retry).await.unwrap();
    assert_eq!(
        out,
        WriteOutcome {
            inserted: 100,
            existing: 100
        }
    );
    assert_eq!(count(&store, "SELECT count(*) FROM events").await, 200);
    assert_eq!(
        store
            .get("plugin:github", "cursor")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"page-1"[..])
    );
}

/// drowl's `plugins` table as the registry, in PostgreSQL: the rules the memory and
/// SQLite stores follow too.
#[tokio::test]
async fn the_postgres_registry_follows_the_shared_rules() {
    let db = TestDb::create().await;
    let store = migrated(&db, InsertMode::Unnest).await;
    drowl_host::storage::plugins::conformance::plugin_rows_follow_the_rules(&*store).await;
}
