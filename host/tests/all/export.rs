//! Issue #12: `data_export` with the first-party `export` plugin. The selected events are
//! written as gzipped NDJSON parts (or POSTed in batches), each page idempotently; the
//! host resumes a failed job after its last delivered page and writes a manifest object
//! listing every part.

use std::io::Read as _;
use std::sync::{Arc, Mutex};

use drowl_host::jobs::{Executor, HostPolicy, PluginSettings, Retry};
use drowl_host::storage::conformance as tc;
use drowl_host::storage::{
    EventFilter, KeywordMatchRecord, KeywordRecord, NewEvent, ObjectKey, Storage,
};
use serde_json::{Value, json};

use crate::support::*;

/// 1,300 events: sources `github` and `zenn` alternating by tens, types push/star
/// alternating, one a minute from 2024-01-01; every 7th matches keyword `rust`.
pub(crate) async fn seed(storage: &Storage, tag: &str) -> Vec<NewEvent> {
    let mut events: Vec<NewEvent> = (0..1300).map(|n| tc::event(tag, n, 50)).collect();
    for (n, e) in events.iter_mut().enumerate() {
        if (n / 10) % 2 == 1 {
            e.source = "zenn".into();
        }
    }
    storage.events.insert_events(&events).await.unwrap();
    storage
        .events
        .upsert_keywords(&[KeywordRecord {
            id: "kw-rust".into(),
            term: "Rust".into(),
            category: "technology".into(),
            match_strategy: "word_boundary".into(),
            regex_pattern: None,
            synonyms: Vec::new(),
        }])
        .await
        .unwrap();
    let matches: Vec<KeywordMatchRecord> = events
        .iter()
        .step_by(7)
        .map(|e| KeywordMatchRecord {
            event_id: e.id.clone(),
            keyword_id: "kw-rust".into(),
            matched_text: "Rust".into(),
            position: 0,
            occurrences: 1,
            plugin_id: "keywords".into(),
        })
        .collect();
    storage
        .events
        .insert_keyword_matches(&matches)
        .await
        .unwrap();
    events
}

fn export_job(input: Value) -> Value {
    json!({ "type": "data_export", "name": "export-events", "input": input })
}

/// Reads one gzipped NDJSON object back as its lines.
async fn read_part(storage: &Storage, location: &str) -> Vec<Value> {
    let relative = location
        .strip_prefix("plugins/export/objects/")
        .unwrap_or_else(|| panic!("{location} is under the plugin's prefix"));
    let key = ObjectKey::plugin_object("export", relative).unwrap();
    let bytes = storage
        .objects
        .get(&key)
        .await
        .unwrap()
        .expect("the part exists");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// What the job's filter selects, by the host's own reading of the store.
pub(crate) async fn selected(storage: &Storage, filter: &EventFilter) -> Vec<String> {
    storage
        .events
        .list_events(filter, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

async fn exporter(dir: &std::path::Path, config: &[(&str, &str)], grant: Option<&str>) -> Executor {
    let mut policy = HostPolicy::default();
    if let Some(origin) = grant {
        policy.default_grants = vec![origin.to_owned()];
        policy.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    }
    policy.plugins.insert(
        "export".into(),
        PluginSettings {
            config: config
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..PluginSettings::default()
        },
    );
    executor(dir, &[&component("export-plugin")], policy).await
}

/// Checks an export's parts and manifest against what its filter selects, and returns
/// the ids exported.
pub(crate) async fn check_export(storage: &Storage, job_id: &str, output: &Value, want: &[String]) {
    let locations: Vec<&str> = output["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let mut got = Vec::new();
    for l in &locations {
        for line in read_part(storage, l).await {
            assert!(
                line["payload"].is_object(),
                "raw payload kept as JSON: {line}"
            );
            got.push(line["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, want, "every selected event once, in id order");
    assert_eq!(output["delivered"], want.len());
    let key =
        ObjectKey::plugin_object("export", &format!("exports/{job_id}/manifest.json")).unwrap();
    let manifest: Value =
        serde_json::from_slice(&storage.objects.get(&key).await.unwrap().expect("manifest"))
            .unwrap();
    assert_eq!(manifest["events"], want.len(), "{manifest}");
    assert_eq!(manifest["locations"], output["locations"], "{manifest}");
}

#[tokio::test]
async fn an_export_writes_what_its_filters_select_as_gzipped_ndjson_parts() {
    let dir = tempfile::tempdir().unwrap();
    let exec = exporter(dir.path(), &[], None).await;
    let storage = exec.storage();
    let events = seed(storage, &tc::tag()).await;

    // Time range, source and type: about a quarter of the 1,300 events, three pages.
    let input = json!({ "pluginId": "export", "source": "github", "eventType": "push",
                        "since": events[0].occurred_at.to_rfc3339(),
                        "until": events[1299].occurred_at.to_rfc3339() });
    let out = exec
        .execute(&job("exp-1", export_job(input)), None)
        .await
        .unwrap()
        .output;
    let filter = EventFilter {
        source: Some("github".into()),
        event_types: Some(vec!["push".into()]),
        since: Some(events[0].occurred_at),
        until: Some(events[1299].occurred_at),
        ..EventFilter::default()
    };
    let want = selected(storage, &filter).await;
    assert!(want.len() > 300, "{}", want.len());
    check_export(storage, "exp-1", &out, &want).await;
    assert_eq!(out["calls"], 1, "{out}");

    // Everything: three parts of up to 500.
    let all = exec
        .execute(
            &job("exp-2", export_job(json!({ "pluginId": "export" }))),
            None,
        )
        .await
        .unwrap()
        .output;
    let want = selected(storage, &EventFilter::default()).await;
    assert_eq!(want.len(), 1300);
    check_export(storage, "exp-2", &all, &want).await;
    assert_eq!(all["locations"].as_array().unwrap().len(), 3, "{all}");

    // By keyword, named by term in any case.
    let kw = exec
        .execute(
            &job(
                "exp-3",
                export_job(json!({ "pluginId": "export", "keyword": "rust" })),
            ),
            None,
        )
        .await
        .unwrap()
        .output;
    let want = selected(
        storage,
        &EventFilter {
            keyword: Some("kw-rust".into()),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(want.len(), 1300usize.div_ceil(7));
    check_export(storage, "exp-3", &kw, &want).await;

    // Bad filters fail at once, naming the field.
    for (input, field) in [
        (
            json!({ "pluginId": "export", "eventTypes": "push" }),
            "eventTypes",
        ),
        (
            json!({ "pluginId": "export", "since": "yesterday" }),
            "since",
        ),
    ] {
        let e = exec
            .execute(&job("bad", export_job(input)), None)
            .await
            .unwrap_err();
        assert_eq!(e.failure.retry(), Retry::No);
        assert!(e.failure.to_string().contains(field), "{}", e.failure);
    }
}

/// The batches a receiver accepted: (idempotency key, event ids).
type Posts = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// A receiver that fails its `fail_on`-th POST once with a 500 and records the rest.
#[derive(Clone, Default)]
struct Receiver {
    posts: Posts,
    seen: Arc<Mutex<u32>>,
}

async fn receiver(fail_on: u32) -> (String, Receiver) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    let state = Receiver::default();
    let r = state.clone();
    let app = axum::Router::new().route(
        "/ingest",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let r = r.clone();
            async move {
                let n = {
                    let mut seen = r.seen.lock().unwrap();
                    *seen += 1;
                    *seen
                };
                if n == fail_on {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                assert_eq!(headers["content-encoding"], "gzip");
                let mut text = String::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_string(&mut text)
                    .unwrap();
                let ids = text
                    .lines()
                    .map(|l| {
                        serde_json::from_str::<Value>(l).unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                    })
                    .collect();
                let key = headers["idempotency-key"].to_str().unwrap().to_owned();
                r.posts.lock().unwrap().push((key, ids));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

#[tokio::test]
async fn a_failed_http_export_resumes_after_the_last_delivered_batch() {
    let (origin, rx) = receiver(2).await;
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("{origin}/ingest");
    let exec = exporter(
        dir.path(),
        &[("destination", "http"), ("endpoint", &endpoint)],
        Some(&origin),
    )
    .await;
    let storage = exec.storage();
    seed(storage, &tc::tag()).await;
    let all = selected(storage, &EventFilter::default()).await;

    let request = job("exp-http", export_job(json!({ "pluginId": "export" })));
    let first = exec.execute(&request, None).await.unwrap_err();
    assert!(
        matches!(first.failure.retry(), Retry::Yes(_)),
        "a 500 is retryable: {}",
        first.failure
    );
    assert_eq!(
        rx.posts.lock().unwrap().len(),
        1,
        "one batch delivered before the failure"
    );

    let retry = exec.execute(&request, None).await.unwrap().output;
    assert_eq!(retry["resumedAfter"], all[499], "{retry}");
    let posts = rx.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 3, "batch 1 once, then 2 and 3");
    let delivered: Vec<String> = posts.iter().flat_map(|(_, ids)| ids.clone()).collect();
    assert_eq!(delivered, all, "every event exactly once, in order");
    for (key, ids) in &posts {
        assert_eq!(
            key,
            &format!("data_export:exp-http:{}", ids[0]),
            "idempotency key per batch"
        );
    }
    assert_eq!(retry["delivered"], 1300);
    assert_eq!(retry["locations"].as_array().unwrap().len(), 3);
}

/// An export larger than the job's call budget (`--max-pages`) ends each job there and
/// continues in the next (the executor returns the continuation `serve` enqueues); the
/// parts land in one folder and the last job writes the manifest listing all of them.
#[tokio::test]
async fn a_large_export_continues_across_jobs_into_one_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = HostPolicy::default();
    policy.caps.max_pages_per_job = 1;
    policy
        .plugins
        .insert("export".into(), PluginSettings::default());
    let exec = executor(dir.path(), &[&component("export-plugin")], policy).await;
    let storage = exec.storage();
    seed(storage, &tc::tag()).await;
    let mut input = json!({ "pluginId": "export" });
    let mut jobs = 0;
    let last = loop {
        jobs += 1;
        let done = exec
            .execute(
                &job(&format!("big-{jobs}"), export_job(input.clone())),
                None,
            )
            .await
            .unwrap();
        match done.continuation {
            Some(next) => {
                assert_eq!(next["exportId"], "big-1", "{next}");
                input = next;
            }
            None => break done.output,
        }
    };
    assert_eq!(jobs, 3, "1,300 events in pages of 500, one page per job");
    assert_eq!(last["exportId"], "big-1");
    let want = selected(storage, &EventFilter::default()).await;
    check_export(storage, "big-1", &last, &want).await;
    for l in last["locations"].as_array().unwrap() {
        assert!(
            l.as_str().unwrap().contains("/exports/big-1/part-"),
            "one folder per export: {l}"
        );
    }
}
