//! Ingestion end to end: paging, cursors across runs, idempotent re-runs, raw payloads,
//! follow-ups, and keyword extraction over what was stored.

use std::path::Path;

use drowl_host::jobs::HostPolicy;
use drowl_host::runtime::Budget;
use drowl_host::storage::{EventFilter, ObjectKey};
use serde_json::json;

use crate::support::*;

fn paging(pages: u32) -> serde_json::Value {
    json!({ "type": "event_ingestion", "name": "paging", "input": { "pluginId": "hostile", "mode": "ok", "count": 4, "pages": pages } })
}

/// A job that stops at the page budget resumes from its stored cursor on the next run;
/// re-running from scratch stores nothing twice.
#[tokio::test]
async fn cursor_persists_across_runs_and_reruns_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let policy = HostPolicy {
        caps: Budget {
            max_pages_per_job: 2,
            ..Budget::default()
        },
        ..HostPolicy::default()
    };
    let exec = executor(dir.path(), &[&hostile], policy).await;

    let first = exec
        .execute(&job("run-1", paging(5)), None)
        .await
        .unwrap()
        .output;
    assert_eq!(first["pages"], 2);
    assert_eq!(first["eventsStored"], 8);
    assert_eq!(first["hasMore"], true);
    assert_eq!(first["cursor"], "2");

    let second = exec
        .execute(&job("run-2", paging(5)), None)
        .await
        .unwrap()
        .output;
    assert_eq!(
        second["cursorBefore"], "2",
        "the second run must resume where the first stopped"
    );
    assert_eq!(second["pages"], 2);
    assert_eq!(second["eventsStored"], 8);

    let third = exec
        .execute(&job("run-3", paging(5)), None)
        .await
        .unwrap()
        .output;
    assert_eq!(third["pages"], 1);
    assert_eq!(third["hasMore"], false);
    assert_eq!(third["eventsStored"], 4);

    let all = exec
        .storage()
        .events
        .list_events(&EventFilter::default(), None, 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), 20);

    // From scratch again: every event is already there.
    let mut again = paging(5);
    again["input"]["reset"] = json!(true);
    let mut total_dupes = 0;
    let mut out = exec
        .execute(&job("run-4", again.clone()), None)
        .await
        .unwrap()
        .output;
    total_dupes += out["duplicates"].as_u64().unwrap();
    assert_eq!(out["eventsStored"], 0);
    while out["hasMore"] == true {
        out = exec
            .execute(&job("run-5", paging(5)), None)
            .await
            .unwrap()
            .output;
        assert_eq!(out["eventsStored"], 0);
        total_dupes += out["duplicates"].as_u64().unwrap();
    }
    assert_eq!(total_dupes, 20);
    let all = exec
        .storage()
        .events
        .list_events(&EventFilter::default(), None, 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), 20, "re-running must not duplicate events");
}

/// Every stored event points at its raw payload, which exists, inside the plugin's prefix.
#[tokio::test]
async fn raw_payloads_are_stored_first_under_the_plugin_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], HostPolicy::default()).await;
    exec.execute(&job("raw", paging(2)), None).await.unwrap();
    let events = exec
        .storage()
        .events
        .list_events(&EventFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 8);
    for e in events {
        let sk = e.storage_key.expect("storage_key");
        let (key, line) = sk.split_once('#').unwrap();
        assert!(key.starts_with("plugins/hostile/raw/test/"), "{key}");
        let object = exec
            .storage()
            .objects
            .get(&ObjectKey::parse(key).unwrap())
            .await
            .unwrap()
            .expect("object exists");
        let text = String::from_utf8(object.to_vec()).unwrap();
        let raw: serde_json::Value =
            serde_json::from_str(text.lines().nth(line.parse().unwrap()).unwrap()).unwrap();
        assert_eq!(raw, e.raw_payload, "the object line is the event's payload");
    }
}

/// Follow-up jobs are collected and progress is reported.
#[tokio::test]
async fn follow_ups_and_progress_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    // The `enqueue` mode asks the keywords plugin for work: the operator must grant it.
    let policy = HostPolicy {
        default_follow_ups: vec!["keyword_extraction:keywords".parse().unwrap()],
        ..HostPolicy::default()
    };
    let exec = executor(dir.path(), &[&hostile], policy).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = {
        let seen = seen.clone();
        std::sync::Arc::new(move |p: u8| seen.lock().unwrap().push(p))
    };
    let j = json!({ "type": "event_ingestion", "name": "enq", "input": { "pluginId": "hostile", "mode": "enqueue" } });
    let done = exec.execute(&job("enq", j), Some(sink)).await.unwrap();
    let report = done.report.unwrap();
    assert_eq!(report.follow_ups.len(), 1);
    assert_eq!(report.follow_ups[0].job_type, "keyword_extraction");
    assert_eq!(*seen.lock().unwrap(), vec![50]);
}

/// The embedded store's own database, read-only: what was stored, checked with SQL rather
/// than through the host's view of it.
async fn embedded_db(dir: &Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("drowl.db"))
        .read_only(true);
    sqlx::SqlitePool::connect_with(opts)
        .await
        .expect("open drowl.db")
}

/// Every row of `keywords`, whole, in id order.
async fn keyword_rows(db: &sqlx::SqlitePool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT json_array(id, term, category, match_strategy, regex_pattern, synonyms, \
         is_active, priority, created_at, updated_at) FROM keywords ORDER BY id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// Stored matches per keyword id.
async fn matches_per_keyword(db: &sqlx::SqlitePool) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT keyword_id, count(*) FROM keyword_matches GROUP BY keyword_id ORDER BY keyword_id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// A keyword job over the hostile plugin's events, with `keywords` inline.
fn extract(keywords: serde_json::Value) -> serde_json::Value {
    json!({ "type": "keyword_extraction", "name": "extract-keywords",
            "input": { "keywords": keywords } })
}

/// `eventIds` of any length: 1,200 ids are read 500 at a time, every one of them scanned
/// (a job used to stop after the first 500), and a job past its call budget hands back
/// its continuation, which `serve` enqueues and `run-plugin` prints.
#[tokio::test]
async fn event_ids_of_any_length_are_all_scanned_and_budgets_continue() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let keywords = component("keywords-plugin");
    let exec = executor(dir.path(), &[&hostile, &keywords], HostPolicy::default()).await;
    let ingest = json!({ "type": "event_ingestion", "name": "many",
        "input": { "pluginId": "hostile", "mode": "ok", "count": 1200 } });
    exec.execute(&job("ingest", ingest), None).await.unwrap();
    let stored = exec
        .storage()
        .events
        .list_events(&EventFilter::default(), None, 5000)
        .await
        .unwrap();
    let ids: Vec<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 1200);
    let by_ids = json!({ "type": "keyword_extraction", "name": "extract-keywords",
        "input": { "eventIds": ids, "keywords": ["Rust"] } });
    let done = exec.execute(&job("by-ids", by_ids), None).await.unwrap();
    assert_eq!(done.output["eventsScanned"], 1200, "{}", done.output);
    assert_eq!(done.output["matchesByKeyword"]["Rust"], 1200);
    assert!(done.continuation.is_none());

    // One call per job: the job stops after 500 and says where the next one resumes.
    let mut policy = HostPolicy::default();
    policy.caps.max_pages_per_job = 1;
    let dir2 = tempfile::tempdir().unwrap();
    let small = executor(dir2.path(), &[&hostile, &keywords], policy).await;
    let ingest = json!({ "type": "event_ingestion", "name": "many",
        "input": { "pluginId": "hostile", "mode": "ok", "count": 700 } });
    small.execute(&job("ingest", ingest), None).await.unwrap();
    let all = json!({ "type": "keyword_extraction", "name": "extract-keywords",
        "input": { "keywords": ["Rust"] } });
    let first = small.execute(&job("kw-1", all), None).await.unwrap();
    assert_eq!(first.output["eventsScanned"], 500);
    let next = first.continuation.expect("a continuation");
    assert_eq!(next["keywords"], json!(["Rust"]));
    assert_eq!(next["resumeAfter"], first.output["continuesAfter"]);
    assert!(
        first.output.get("continueWith").is_none(),
        "moved out of the output"
    );
    let second = small
        .execute(
            &job(
                "kw-2",
                json!({ "type": "keyword_extraction", "name": "extract-keywords", "input": next }),
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(second.output["eventsScanned"], 200);
    assert!(second.continuation.is_none());
}

/// Keyword extraction reads the stored events and stores each match of a tracked keyword
/// once; an inline term drowl does not track is reported, not added.
#[tokio::test]
async fn keyword_extraction_runs_over_stored_events() {
    keyword_extraction(component("keywords-plugin")).await;
}

/// The same, unchanged, with the keywords component built against contract 0.1.0 before
/// 0.2.0 existed, next to a hostile plugin built against 0.2.0's SDK (issue #12).
#[tokio::test]
async fn a_keywords_component_built_for_contract_0_1_0_passes_the_same_test() {
    keyword_extraction(contract_0_1_0_fixture("keywords_plugin.wasm")).await;
}

async fn keyword_extraction(keywords: std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile, &keywords], HostPolicy::default()).await;
    exec.storage()
        .events
        .upsert_keywords(&[
            tracked("kw-rust", "rust", "word_boundary"),
            tracked("kw-page-1", "page 1", "substring"),
        ])
        .await
        .unwrap();
    exec.execute(&job("ingest", paging(2)), None).await.unwrap();
    let extract = json!({ "type": "keyword_extraction", "name": "extract-keywords",
        "input": { "keywords": ["rust", { "term": "page 1", "matchStrategy": "substring" }, "Go"] } });
    let out = exec
        .execute(&job("kw-1", extract.clone()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(out["eventsScanned"], 8);
    assert_eq!(out["matchesByKeyword"]["rust"], 8, "{out}");
    assert_eq!(out["matchesByKeyword"]["page 1"], 4, "{out}");
    assert!(out["matchesByKeyword"].get("Go").is_none(), "{out}");
    assert_eq!(out["matchesStored"], 12);
    let again = exec
        .execute(&job("kw-2", extract), None)
        .await
        .unwrap()
        .output;
    assert_eq!(again["matchesStored"], 0);
    assert_eq!(again["matchesExisting"], 12);
    assert_eq!(
        again["unknownKeywords"],
        json!([{ "term": "Go", "matches": 0 }])
    );
    let db = embedded_db(dir.path()).await;
    assert_eq!(keyword_rows(&db).await.len(), 2, "`Go` was not added");
    assert_eq!(
        matches_per_keyword(&db).await,
        [("kw-page-1".to_owned(), 4), ("kw-rust".to_owned(), 8)]
    );
}

/// Security matrix row 28: a job's inline keyword carrying the id of a tracked keyword,
/// with another term, strategy, category, pattern and synonyms, leaves that row exactly as
/// it was; the term it names is matched as an untracked one, under an id of its own.
#[tokio::test]
async fn an_inline_keyword_id_does_not_rewrite_a_tracked_keyword() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let keywords = component("keywords-plugin");
    let exec = executor(dir.path(), &[&hostile, &keywords], HostPolicy::default()).await;
    let mut rust = tracked("kw-tracked", "Rust", "word_boundary");
    rust.synonyms = vec!["rustlang".into()];
    exec.storage()
        .events
        .upsert_keywords(std::slice::from_ref(&rust))
        .await
        .unwrap();
    exec.execute(&job("ingest", paging(1)), None).await.unwrap();
    let db = embedded_db(dir.path()).await;
    let before = keyword_rows(&db).await;

    let hijack = extract(
        json!([{ "id": "kw-tracked", "term": "page", "category": "custom",
        "matchStrategy": "regex", "regexPattern": "page", "synonyms": ["event"] }]),
    );
    let out = exec
        .execute(&job("kw-1", hijack), None)
        .await
        .unwrap()
        .output;
    assert_eq!(out["matchesStored"], 0, "{out}");
    assert_eq!(out["matchesByKeyword"], json!({ "page": 4 }), "{out}");
    assert_eq!(
        out["unknownKeywords"],
        json!([{ "term": "page", "matches": 4 }])
    );
    assert_eq!(
        keyword_rows(&db).await,
        before,
        "the tracked row was rewritten"
    );
    assert_eq!(
        exec.storage().events.active_keywords().await.unwrap(),
        [rust]
    );
    assert_eq!(matches_per_keyword(&db).await, Vec::<(String, i64)>::new());

    // The tracked keyword still matches as itself.
    let all = json!({ "type": "keyword_extraction", "name": "extract-keywords", "input": {} });
    let out = exec.execute(&job("kw-2", all), None).await.unwrap().output;
    assert_eq!(out["matchesByKeyword"], json!({ "Rust": 4 }), "{out}");
    assert_eq!(
        matches_per_keyword(&db).await,
        [("kw-tracked".to_owned(), 4)]
    );
}

/// Inline terms no tracked keyword has are matched with their inline strategy and
/// reported with their counts; neither `keywords` nor `keyword_matches` gets a row.
#[tokio::test]
async fn unknown_inline_terms_are_reported_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let keywords = component("keywords-plugin");
    let exec = executor(dir.path(), &[&hostile, &keywords], HostPolicy::default()).await;
    exec.storage()
        .events
        .upsert_keywords(&[tracked("kw-go", "Go", "word_boundary")])
        .await
        .unwrap();
    exec.execute(&job("ingest", paging(2)), None).await.unwrap();
    let db = embedded_db(dir.path()).await;
    let before = keyword_rows(&db).await;
    let unknown = extract(json!([
        "mentions",
        { "term": "PAGE 1", "matchStrategy": "substring" },
        "nowhere",
        "Mentions"
    ]));
    for run in ["kw-1", "kw-2"] {
        let out = exec
            .execute(&job(run, unknown.clone()), None)
            .await
            .unwrap()
            .output;
        assert_eq!(out["keywords"], 3, "{out}");
        assert_eq!(
            out["matchesByKeyword"],
            json!({ "mentions": 8, "PAGE 1": 4 }),
            "{out}"
        );
        assert_eq!(
            out["unknownKeywords"],
            json!([
                { "term": "mentions", "matches": 8 },
                { "term": "PAGE 1", "matches": 4 },
                { "term": "nowhere", "matches": 0 }
            ])
        );
        assert_eq!(
            (&out["matchesStored"], &out["matchesExisting"]),
            (&json!(0), &json!(0))
        );
        assert_eq!(keyword_rows(&db).await, before, "a keyword row was written");
        assert_eq!(matches_per_keyword(&db).await, Vec::<(String, i64)>::new());
    }
}

/// A tracked term given in another case resolves to the stored row, whose strategy wins
/// over the inline one, and its matches are stored under the row's id.
#[tokio::test]
async fn a_known_term_in_another_case_resolves_to_the_stored_row() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let keywords = component("keywords-plugin");
    let exec = executor(dir.path(), &[&hostile, &keywords], HostPolicy::default()).await;
    exec.storage()
        .events
        .upsert_keywords(&[
            tracked("kw-rust", "Rust", "word_boundary"),
            // "ent" as a substring is in every "event"; as a word, in none.
            tracked("kw-ent", "ent", "substring"),
        ])
        .await
        .unwrap();
    exec.execute(&job("ingest", paging(2)), None).await.unwrap();
    let db = embedded_db(dir.path()).await;
    let before = keyword_rows(&db).await;
    let known = extract(json!([
        "rUST",
        { "id": "kw-other", "term": " ENT ", "matchStrategy": "word_boundary" }
    ]));
    let out = exec
        .execute(&job("kw-1", known.clone()), None)
        .await
        .unwrap()
        .output;
    assert_eq!(
        out["matchesByKeyword"],
        json!({ "Rust": 8, "ent": 8 }),
        "{out}"
    );
    assert_eq!(out["unknownKeywords"], json!([]));
    assert_eq!(out["matchesStored"], 16, "{out}");
    assert_eq!(
        matches_per_keyword(&db).await,
        [("kw-ent".to_owned(), 8), ("kw-rust".to_owned(), 8)]
    );
    assert_eq!(keyword_rows(&db).await, before);
    let again = exec
        .execute(&job("kw-2", known), None)
        .await
        .unwrap()
        .output;
    assert_eq!(
        (&again["matchesStored"], &again["matchesExisting"]),
        (&json!(0), &json!(16))
    );
}

/// Jobs that name a missing plugin, or a plugin of the wrong kind, fail with a reason.
#[tokio::test]
async fn routing_failures_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], HostPolicy::default()).await;
    let j = json!({ "type": "event_ingestion", "name": "x", "input": { "pluginId": "twitter" } });
    let e = exec
        .execute(&job("r1", j), None)
        .await
        .unwrap_err()
        .failure
        .to_string();
    assert!(
        e.contains("plugin `twitter` is not installed; installed plugins: hostile"),
        "{e}"
    );
    let j =
        json!({ "type": "keyword_extraction", "name": "x", "input": { "pluginId": "hostile" } });
    let e = exec
        .execute(&job("r2", j), None)
        .await
        .unwrap_err()
        .failure
        .to_string();
    assert!(e.contains("implements ingestion-plugin"), "{e}");
    let j = json!({ "type": "report_generation", "name": "x", "input": {} });
    let e = exec
        .execute(&job("r3", j), None)
        .await
        .unwrap_err()
        .failure
        .to_string();
    assert!(e.contains("no handler for report_generation"), "{e}");
}

/// A plugin may enqueue follow-ups for itself; one for another plugin is refused unless
/// the operator granted it, and the plugin is told why (security matrix row 28).
#[tokio::test]
async fn follow_ups_for_other_plugins_need_a_grant() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], HostPolicy::default()).await;
    for mode in ["enqueue", "enqueue-other"] {
        let j = json!({ "type": "event_ingestion", "name": mode, "input": { "pluginId": "hostile", "mode": mode } });
        let failed = exec.execute(&job(mode, j), None).await.unwrap_err();
        let message = failed.failure.to_string();
        assert!(
            message.contains("not granted to plugin `hostile`"),
            "{mode}: {message}"
        );
        assert!(failed.report.unwrap().follow_ups.is_empty(), "{mode}");
    }
    // Copies of itself are its own jobs: allowed, pinned to it, one level deeper.
    let j = json!({ "type": "event_ingestion", "name": "fan", "input": { "pluginId": "hostile", "mode": "fanout", "count": 3 } });
    let done = exec.execute(&job("fan", j), None).await.unwrap();
    let follow_ups = done.report.unwrap().follow_ups;
    assert_eq!(follow_ups.len(), 3);
    assert!(follow_ups.iter().all(|f| f.input["pluginId"] == "hostile"));
}

/// A follow-up at the depth limit may not enqueue more (security matrix row 28).
#[tokio::test]
async fn follow_ups_stop_at_the_depth_limit() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], HostPolicy::default()).await;
    let at = |depth: u32| {
        json!({ "type": "event_ingestion", "name": "fan",
                "input": { "pluginId": "hostile", "mode": "fanout", "count": 2 },
                "lineage": { "root": "root-1", "depth": depth } })
    };
    let below = exec.execute(&job("j2", at(2)), None).await.unwrap();
    assert_eq!(below.report.unwrap().follow_ups.len(), 2);
    let at_limit = exec.execute(&job("j3", at(3)), None).await.unwrap();
    assert!(at_limit.report.unwrap().follow_ups.is_empty());
}

/// The hostile plugin installed twice, the second copy renamed `impostor`: two plugins
/// that both declare the source `test`.
async fn hostile_and_impostor(
    dir: &std::path::Path,
    policy: &HostPolicy,
) -> Result<drowl_host::jobs::Executor, drowl_host::jobs::RegistryError> {
    use drowl_host::jobs::{Executor, ReadyPlugin, Registry};
    use drowl_host::runtime::{EngineSettings, Runtime};
    let storage = drowl_host::storage::open_embedded(dir).await.unwrap();
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(root().join("target/drowl-test-cache")),
        ..EngineSettings::default()
    })
    .unwrap();
    let hostile = runtime
        .load_file(&component("hostile-plugin"))
        .await
        .unwrap();
    let mut impostor = hostile.clone();
    impostor.manifest.id = "impostor".into();
    let mut registry = Registry::default();
    for p in [hostile, impostor] {
        registry
            .insert(ReadyPlugin::prepare(p, policy, &storage)?)
            .unwrap();
    }
    Ok(Executor::new(runtime, storage, registry))
}

fn ingest_as(plugin: &str, mode: &str, field: &str) -> serde_json::Value {
    json!({ "type": "event_ingestion", "name": "probe",
            "input": { "pluginId": plugin, "mode": mode, "field": field, "count": 1 } })
}

/// Rows of the embedded database in `dir`, as one `|`-separated string per row.
async fn sqlite_rows(dir: &std::path::Path, sql: &str) -> Vec<String> {
    let url = format!("sqlite://{}?mode=ro", dir.join("drowl.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
    pool.close().await;
    rows
}

/// Security row 31: a source two installed plugins declare is emitted by neither until
/// the operator grants it to one, and then only by that one; a grant must name a
/// declared source.
#[tokio::test]
async fn a_source_two_plugins_declare_belongs_only_to_the_one_granted_it() {
    let dir = tempfile::tempdir().unwrap();
    let exec = hostile_and_impostor(dir.path(), &HostPolicy::default())
        .await
        .unwrap();
    for (plugin, other) in [("hostile", "impostor"), ("impostor", "hostile")] {
        let e = exec
            .execute(&job(plugin, ingest_as(plugin, "ok", "")), None)
            .await
            .unwrap_err()
            .failure;
        assert_eq!(e.code(), "invalid-output", "{e}");
        let m = e.to_string();
        assert!(
            m.contains(&format!(
                "events[0].source \"test\" is also declared by plugin `{other}`"
            )),
            "{m}"
        );
    }
    assert!(
        sqlite_rows(dir.path(), "SELECT id FROM events")
            .await
            .is_empty(),
        "nothing is stored for a contested source"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut policy = HostPolicy::default();
    policy.plugins.entry("hostile".into()).or_default().sources = vec!["test".into()];
    let exec = hostile_and_impostor(dir.path(), &policy).await.unwrap();
    let out = exec
        .execute(&job("granted", ingest_as("hostile", "ok", "")), None)
        .await
        .unwrap()
        .output;
    assert_eq!(out["eventsStored"], 1);
    let e = exec
        .execute(&job("impostor", ingest_as("impostor", "ok", "")), None)
        .await
        .unwrap_err()
        .failure;
    assert_eq!(e.code(), "invalid-output", "{e}");
    assert!(
        e.to_string()
            .contains("\"test\" is also declared by plugin `hostile`"),
        "{e}"
    );
    assert_eq!(
        sqlite_rows(dir.path(), "SELECT plugin_id FROM events").await,
        ["hostile"]
    );

    let mut policy = HostPolicy::default();
    policy.plugins.entry("impostor".into()).or_default().sources = vec!["gitlab".into()];
    let e = hostile_and_impostor(dir.path(), &policy)
        .await
        .expect_err("a grant of an undeclared source is refused");
    assert!(
        e.to_string().contains(
            "plugin `impostor`: source `gitlab` is granted but its manifest does not declare it"
        ),
        "{e}"
    );
}

/// Security row 31: a plugin reports identities only on the platforms of its own sources,
/// as an event's actor or in the page's identities, unless the operator grants another.
#[tokio::test]
async fn identities_on_another_platform_need_a_grant() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], HostPolicy::default()).await;
    for (field, named) in [
        ("actor", "events[0].actor.platform"),
        ("identities", "identities[0].platform"),
    ] {
        let e = exec
            .execute(
                &job(field, ingest_as("hostile", "foreign-identity", field)),
                None,
            )
            .await
            .unwrap_err()
            .failure;
        assert_eq!(e.code(), "invalid-output", "{e}");
        assert!(
            e.to_string().contains(&format!(
                "{named} \"github\" is not a platform of plugin `hostile` (its platforms: test)"
            )),
            "{e}"
        );
    }
    assert!(
        sqlite_rows(dir.path(), "SELECT platform FROM identities")
            .await
            .is_empty(),
        "no identity, and nothing else, is stored from a refused page"
    );
    assert!(
        sqlite_rows(dir.path(), "SELECT id FROM events")
            .await
            .is_empty()
    );

    let dir = tempfile::tempdir().unwrap();
    let policy = HostPolicy {
        default_platforms: vec!["github".into()],
        ..HostPolicy::default()
    };
    let exec = executor(dir.path(), &[&hostile], policy).await;
    for field in ["actor", "identities"] {
        exec.execute(
            &job(field, ingest_as("hostile", "foreign-identity", field)),
            None,
        )
        .await
        .unwrap();
    }
    assert_eq!(
        sqlite_rows(
            dir.path(),
            "SELECT platform || ':' || display_name FROM identities WHERE platform = 'github'"
        )
        .await,
        ["github:Not The Octocat"]
    );
}

/// Security row 32: NUL in any field of a page is `invalid-output` naming that field, and
/// nothing of the page is stored (not even its raw payload object).
#[tokio::test]
async fn nul_in_any_output_field_is_invalid_output_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], HostPolicy::default()).await;
    for (field, named) in [
        (
            "event-type",
            "events[0].event-type \"pu\\0sh\" contains a NUL character",
        ),
        (
            "external-id",
            "events[0].external-id \"nul\\0\" contains a NUL character",
        ),
        (
            "text",
            "events[0].text \"te\\0xt\" contains a NUL character",
        ),
        ("payload", "events[0].payload contains a NUL character"),
        (
            "actor.platform-user-id",
            "events[0].actor.platform-user-id \"user\\0\" contains a NUL character",
        ),
        (
            "actor.display-name",
            "events[0].actor.display-name \"Mal\\0lory\" contains a NUL character",
        ),
        (
            "identities.profile-url",
            "identities[0].profile-url \"https://example.com/\\0\" contains a NUL character",
        ),
        (
            "identities.metadata-json",
            "identities[0].metadata-json contains a NUL character",
        ),
        (
            "next-cursor",
            "next-cursor \"2\\0\" contains a NUL character",
        ),
    ] {
        let e = exec
            .execute(&job(field, ingest_as("hostile", "nul-in", field)), None)
            .await
            .unwrap_err()
            .failure;
        assert_eq!(e.code(), "invalid-output", "{field}: {e}");
        assert!(e.to_string().contains(named), "{field}: {e}");
    }
    assert!(
        sqlite_rows(dir.path(), "SELECT id FROM events")
            .await
            .is_empty()
    );
    assert!(!dir.path().join("objects/plugins/hostile/raw").exists());
}

/// Security row 32: a secret never leaves in a cursor (the job fails before the cursor is
/// saved), a follow-up (refused at enqueue), or a failure message (masked).
#[tokio::test]
async fn secrets_stay_out_of_cursors_follow_ups_and_messages() {
    const SECRET: &str = "ghp_ROW32secret";
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut policy = HostPolicy::default();
    policy.plugins.entry("hostile".into()).or_default().config =
        [("token".to_owned(), SECRET.to_owned())].into();
    let exec = executor(dir.path(), &[&hostile], policy).await;
    for (field, code, needle) in [
        (
            "next-cursor",
            "invalid-output",
            "next-cursor holds one of the plugin's secrets",
        ),
        (
            "next-cursor-hex",
            "invalid-output",
            "next-cursor holds one of the plugin's secrets",
        ),
        (
            "follow-up-name",
            "plugin-permanent",
            "holds one of this plugin's secrets",
        ),
        (
            "follow-up-input",
            "plugin-permanent",
            "holds one of this plugin's secrets",
        ),
        (
            "source",
            "invalid-output",
            "events[0].source \"[REDACTED]\" is not declared",
        ),
    ] {
        let failed = exec
            .execute(
                &job(field, ingest_as("hostile", "leak-secret-in", field)),
                None,
            )
            .await
            .unwrap_err();
        let e = &failed.failure;
        assert_eq!(e.code(), code, "{field}: {e}");
        assert!(e.to_string().contains(needle), "{field}: {e}");
        let report = failed.report.unwrap();
        assert!(report.follow_ups.is_empty(), "{field}");
        let everything = format!("{e} {e:?} {:?}", report);
        assert!(!everything.contains(SECRET), "{field}: {everything}");
    }
    assert!(
        sqlite_rows(dir.path(), "SELECT key FROM plugin_kv")
            .await
            .is_empty(),
        "no cursor was saved"
    );
}

/// The feed plugin's `feeds` is optional: without it the plugin loads, and its
/// `{{feeds}}` outbound host declares nothing, so it may reach only its fixed hosts
/// (dev.to, Zenn, Qiita) the operator grants; with it, each listed feed's origin too.
#[tokio::test]
async fn an_optional_outbound_template_left_unset_declares_nothing() {
    use drowl_host::jobs::{PluginSettings, ReadyPlugin};
    use drowl_host::runtime::{EngineSettings, Runtime};
    let dir = tempfile::tempdir().unwrap();
    let storage = drowl_host::storage::open_embedded(dir.path())
        .await
        .unwrap();
    let runtime = Runtime::new(&EngineSettings::default()).unwrap();
    let feed = component("feed-plugin");
    let allowed = async |policy: &HostPolicy| {
        let loaded = runtime.load_file(&feed).await.unwrap();
        ReadyPlugin::prepare(loaded, policy, &storage).map(|p| {
            p.env
                .egress
                .policy()
                .allowed()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        })
    };
    let all = HostPolicy {
        default_grants: vec!["*".to_owned()],
        ..HostPolicy::default()
    };
    assert_eq!(
        allowed(&all).await.expect("loads without `feeds`"),
        [
            "https://dev.to:443",
            "https://qiita.com:443",
            "https://zenn.dev:443"
        ]
    );
    let mut with_feeds = all.clone();
    with_feeds.plugins.insert(
        "feed".into(),
        PluginSettings {
            config: [(
                "feeds".to_owned(),
                "https://blog.example.com/index.xml".to_owned(),
            )]
            .into(),
            ..PluginSettings::default()
        },
    );
    assert!(
        allowed(&with_feeds)
            .await
            .unwrap()
            .contains(&"https://blog.example.com:443".to_owned())
    );
}
