//! The S3 backend against a real S3-compatible server: moto_server started by the test on
//! a random loopback port (or `DROWL_TEST_S3_ENDPOINT`). The outage test always starts its
//! own server, since it has to kill and restart it, and also needs the real PostgreSQL.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use drowl_host::storage::keys::MAX_RELATIVE_KEY_LEN;
use drowl_host::storage::postgres::PostgresStore;
use drowl_host::storage::s3::{S3Config, S3Store};
use drowl_host::storage::{
    EventStore, KeyError, NewEvent, ObjectKey, ObjectStore, StorageError, WriteOutcome,
};
use drowl_testkit::storage::{S3Server, TestDb};
use futures::StreamExt as _;
use sha2::Digest;

fn config(endpoint: &str, bucket: &str) -> S3Config {
    S3Config::new(endpoint, bucket, "drowl-test", "drowl-test-secret")
}

/// A fresh bucket on `server`, and a store connected to it.
async fn fresh_store(server: &S3Server) -> (S3Config, S3Store) {
    let cfg = config(
        &server.endpoint,
        &format!("drowl-test-{}", uuid::Uuid::new_v4().simple()),
    );
    S3Store::create_bucket(&cfg).await.expect("create bucket");
    let store = S3Store::connect(&cfg).await.expect("connect");
    (cfg, store)
}

async fn list_all(store: &S3Store) -> Vec<String> {
    let out = store
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .send()
        .await
        .expect("list bucket");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn prefix_bytes_follows_the_shared_rules_and_pages_past_1000_keys() {
    let server = S3Server::start().await;
    let (_cfg, store) = fresh_store(&server).await;
    drowl_host::storage::conformance::object_store_answers_ping(&store).await;
    drowl_host::storage::conformance::object_prefix_bytes(&store).await;
    // ListObjectsV2 answers 1,000 keys a page: 1,010 objects need a second page.
    let puts = (0..1_010).map(|i| {
        let store = &store;
        async move {
            let key = ObjectKey::plugin_object("paged", &format!("o{i}")).unwrap();
            store
                .put(&key, Bytes::from_static(b"12"), "")
                .await
                .unwrap();
        }
    });
    futures::stream::iter(puts)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let prefix = ObjectKey::plugin_objects_prefix("paged").unwrap();
    assert_eq!(store.prefix_bytes(&prefix).await.unwrap(), 2_020);
}

#[tokio::test]
async fn objects_round_trip() {
    let server = S3Server::start().await;
    // A missing bucket is refused at connect time, naming the variables to fix.
    let missing = config(&server.endpoint, "drowl-no-such-bucket");
    let err = S3Store::connect(&missing).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Config(m) if m.contains("S3_BUCKET") && m.contains("S3_ENDPOINT")),
        "{err}"
    );

    let (cfg, store) = fresh_store(&server).await;
    S3Store::create_bucket(&cfg)
        .await
        .expect("creating an existing bucket is harmless");
    let key = ObjectKey::plugin_object("github", "cache/page-1.json").unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    store
        .put(
            &key,
            Bytes::from_static(b"{\"page\":1}"),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(&b"{\"page\":1}"[..])
    );
    // A retry rewrites the same key.
    store
        .put(
            &key,
            Bytes::from_static(b"{\"page\":2}"),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(&b"{\"page\":2}"[..])
    );
    let head = store
        .client()
        .head_object()
        .bucket(store.bucket())
        .key(key.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    assert_eq!(
        store.describe(&key),
        format!(
            "s3://{}/plugins/github/objects/cache/page-1.json",
            cfg.bucket
        )
    );
    // Binary and empty objects, and a 5 MB one.
    let bin: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    let k2 = ObjectKey::plugin_object("github", "bin").unwrap();
    store.put(&k2, bin.clone(), "").await.unwrap();
    assert_eq!(store.get(&k2).await.unwrap(), Some(bin));
    let k3 = ObjectKey::plugin_object("github", "empty").unwrap();
    store.put(&k3, Bytes::new(), "").await.unwrap();
    assert_eq!(store.get(&k3).await.unwrap(), Some(Bytes::new()));
    let big = Bytes::from(vec![7u8; 5 << 20]);
    let k4 = ObjectKey::plugin_object("github", "big").unwrap();
    store.put(&k4, big.clone(), "").await.unwrap();
    assert_eq!(store.get(&k4).await.unwrap(), Some(big));
}

#[tokio::test]
async fn hostile_keys_are_refused_and_nothing_escapes_the_plugin_prefix() {
    let server = S3Server::start().await;
    let (_cfg, store) = fresh_store(&server).await;
    let long = "a".repeat(MAX_RELATIVE_KEY_LEN + 1);
    let hostile = [
        "../keywords/objects/x",
        "../../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "/plugins/keywords/objects/x",
        "a\0b",
        "nul\0",
        "%2e%2e/x",
        "a\\..\\b",
        "..",
        ".",
        "a//b",
        "",
        long.as_str(),
    ];
    for bad in hostile {
        let err = ObjectKey::plugin_object("github", bad).unwrap_err();
        if bad.len() > MAX_RELATIVE_KEY_LEN {
            assert_eq!(err, KeyError::TooLong(bad.len()));
        }
        // Parsing a stored key is held to the same rules.
        assert!(
            ObjectKey::parse(&format!("plugins/github/objects/{bad}")).is_err(),
            "{bad:?}"
        );
    }
    assert!(ObjectKey::plugin_object("../github", "x").is_err());
    assert!(ObjectKey::plugin_object("GitHub", "x").is_err());
    // The longest allowed key works and stays under S3's 1,024-byte limit.
    let longest = "b".repeat(MAX_RELATIVE_KEY_LEN);
    let ok = ObjectKey::plugin_object("github", &longest).unwrap();
    assert!(ok.as_str().len() < 1024);
    store.put(&ok, Bytes::from_static(b"x"), "").await.unwrap();
    // Dots inside names are fine; they are not traversal.
    let dotted = ObjectKey::plugin_object("github", "a..b/.hidden/c.json").unwrap();
    store
        .put(&dotted, Bytes::from_static(b"y"), "")
        .await
        .unwrap();
    let keys = list_all(&store).await;
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .all(|k| k.starts_with("plugins/github/objects/")),
        "{keys:?}"
    );
}

/// One page of an ingestion job, in the order the host must follow: the raw payloads go
/// to S3 first under a deterministic key, then the rows that point at them.
async fn ingest_page(
    objects: &S3Store,
    events: &PostgresStore,
    page: &[NewEvent],
) -> Result<WriteOutcome, StorageError> {
    let mut digest = sha2::Sha256::new();
    for e in page {
        digest.update(e.id.as_bytes());
        digest.update([0]);
    }
    let day = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let key = ObjectKey::raw_batch("github", "github", day, &hex::encode(digest.finalize()))
        .map_err(|e| StorageError::Invalid(e.to_string()))?;
    let mut ndjson = Vec::new();
    for e in page {
        serde_json::to_writer(&mut ndjson, &e.raw_payload).expect("json");
        ndjson.push(b'\n');
    }
    objects
        .put(&key, ndjson.into(), "application/x-ndjson")
        .await?;
    let rows: Vec<NewEvent> = page
        .iter()
        .map(|e| NewEvent {
            storage_key: Some(key.as_str().to_owned()),
            ..e.clone()
        })
        .collect();
    events.insert_events(&rows).await
}

fn event(tag: &str, n: usize) -> NewEvent {
    NewEvent {
        id: format!("{tag}-{n:06}"),
        source: "github".into(),
        external_id: format!("{tag}-{n}"),
        event_type: "push".into(),
        occurred_at: chrono::Utc::now(),
        raw_payload: serde_json::json!({"n": n, "body": "x".repeat(1000)}),
        storage_key: None,
        text: None,
        actor: None,
        plugin_id: "github".into(),
        plugin_version: "1.0.0".into(),
        correlation_id: Some(tag.to_owned()),
    }
}

#[tokio::test]
async fn s3_stopped_mid_job_then_restarted_and_the_job_retried() {
    // This test kills its server, so it always starts its own moto_server.
    let mut server = S3Server::start_owned().await;
    let (cfg, objects) = fresh_store(&server).await;
    let db = TestDb::create().await;
    let events = PostgresStore::connect(&db.url).await.unwrap();
    events.migrate().await.unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let pages: Vec<Vec<NewEvent>> = (0..3)
        .map(|p| (p * 100..(p + 1) * 100).map(|n| event(&tag, n)).collect())
        .collect();

    // Attempt 1: page 0 lands, then S3 dies.
    assert_eq!(
        ingest_page(&objects, &events, &pages[0])
            .await
            .unwrap()
            .inserted,
        100
    );
    server.stop();
    let started = Instant::now();
    let err = ingest_page(&objects, &events, &pages[1]).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Unavailable(m) if m.contains("S3_ENDPOINT")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed after {:?}",
        started.elapsed()
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(events.pool())
        .await
        .unwrap();
    assert_eq!(
        rows, 100,
        "no row may be written for a page whose payloads did not land"
    );

    // S3 comes back (moto keeps no state, so the bucket is recreated as MinIO would still
    // have it) and the queue retries the whole job.
    server.restart().await;
    S3Store::create_bucket(&cfg).await.unwrap();
    let mut total = WriteOutcome::default();
    for page in &pages {
        let o = ingest_page(&objects, &events, page).await.unwrap();
        total.inserted += o.inserted;
        total.existing += o.existing;
    }
    assert_eq!(
        total,
        WriteOutcome {
            inserted: 200,
            existing: 100
        }
    );

    // Exactly once, and every row points at an object holding its payload.
    let stored: Vec<(String, String, serde_json::Value)> =
        sqlx::query_as("SELECT id, storage_key, raw_payload FROM events ORDER BY id")
            .fetch_all(events.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 300);
    let mut objects_seen = std::collections::HashMap::new();
    for (id, key, payload) in stored {
        if !objects_seen.contains_key(&key) {
            let k = ObjectKey::parse(&key).unwrap();
            let b = objects
                .get(&k)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{id}: {key} missing"));
            objects_seen.insert(key.clone(), String::from_utf8(b.to_vec()).unwrap());
        }
        let body = &objects_seen[&key];
        assert!(
            body.lines()
                .any(|l| serde_json::from_str::<serde_json::Value>(l).unwrap() == payload),
            "{id}: payload not in {key}"
        );
    }
    assert_eq!(objects_seen.len(), 3);
    assert_eq!(
        list_all(&objects).await.len(),
        3,
        "a retry rewrites the same keys"
    );
}
