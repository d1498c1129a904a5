//! The webhook job in process (contract 0.2.0): a stored delivery handed to the real
//! webhook-echo component and its events stored as an ingestion page is; what a job may
//! name; the plugin's key kept from it. The HTTP side (signatures, sizes, duplicates,
//! Bull) is tested through the daemon in `host/tests/daemon.rs`.

use drowl_host::jobs::webhook::{WEBHOOK_SECRET_KEY, delivery_job};
use drowl_host::jobs::{Executor, HostPolicy, JobFailure, PluginSettings, Retry};
use drowl_host::storage::{EventFilter, NewDelivery, ObjectKey};
use serde_json::json;

use crate::support::*;

const KEY: &str = "echo-webhook-key-5f3a";

fn echo() -> std::path::PathBuf {
    component("webhook-echo-plugin")
}

fn policy(config: &[(&str, &str)]) -> HostPolicy {
    let mut p = HostPolicy::default();
    p.plugins.insert(
        "webhook-echo".into(),
        PluginSettings {
            config: config
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..PluginSettings::default()
        },
    );
    p
}

fn delivery(id: &str, body: serde_json::Value) -> NewDelivery {
    NewDelivery {
        plugin_id: "webhook-echo".into(),
        delivery_id: id.into(),
        event: Some("post".into()),
        headers: vec![
            ("x-echo-delivery".into(), id.into()),
            ("x-echo-event".into(), "post".into()),
            ("x-echo-signature".into(), "00".repeat(32)),
        ],
        body: body.to_string().into_bytes().into(),
        received_at: chrono::Utc::now(),
    }
}

fn items() -> serde_json::Value {
    json!({"items": [
        {"id": "e-1", "text": "hello from the echo", "at": "2024-05-01T10:00:00Z", "author": "ada"},
        {"id": "e-2", "text": "and again", "at": "2024-05-01T10:01:00Z"},
    ]})
}

async fn run(ex: &Executor, delivery_id: &str) -> Result<serde_json::Value, JobFailure> {
    let j = delivery_job("webhook-echo", delivery_id, Some("post"));
    ex.execute(&job(&j.id, j.data), None)
        .await
        .map(|c| c.output)
        .map_err(|f| f.failure)
}

/// A stored delivery becomes the plugin's events, stored like an ingestion page: raw
/// payloads in one object the rows point into, the actor as an identity, text kept;
/// running the job again stores nothing twice.
#[tokio::test]
async fn a_stored_delivery_becomes_events_stored_like_an_ingestion_page() {
    let dir = tempfile::tempdir().unwrap();
    let echo = echo();
    let ex = executor(
        dir.path(),
        &[echo.as_path()],
        policy(&[(WEBHOOK_SECRET_KEY, KEY)]),
    )
    .await;
    let storage = ex.storage().clone();
    assert!(
        storage
            .webhooks
            .save_delivery(&delivery("d-1", items()))
            .await
            .unwrap()
            .inserted
    );
    let out = run(&ex, "d-1").await.expect("handled");
    assert_eq!(out["pluginId"], "webhook-echo", "{out}");
    assert_eq!(out["deliveryId"], "d-1", "{out}");
    assert_eq!(out["event"], "post", "{out}");
    assert_eq!(out["eventsReceived"], 2, "{out}");
    assert_eq!(out["eventsStored"], 2, "{out}");
    assert_eq!(out["duplicates"], 0, "{out}");
    assert_eq!(out["identities"], 1, "{out}");
    assert_eq!(out["objectsWritten"], 1, "{out}");

    let events = storage
        .events
        .list_events(
            &EventFilter {
                source: Some("echo".into()),
                ..EventFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    let first = events.iter().find(|e| e.external_id == "e-1").expect("e-1");
    assert_eq!(first.event_type, "post");
    assert_eq!(first.text.as_deref(), Some("hello from the echo"));
    assert_eq!(first.plugin_id, "webhook-echo");
    assert_eq!(first.actor, Some(("echo".into(), "ada".into())));
    assert_eq!(first.raw_payload["text"], "hello from the echo");
    // The row points at its line of the page's raw object.
    let at = first.storage_key.as_deref().expect("storage key");
    let (key, line) = at.split_once('#').expect("key#line");
    let raw = storage
        .objects
        .get(&ObjectKey::parse(key).expect("host key"))
        .await
        .unwrap()
        .expect("raw object");
    let line: usize = line.parse().unwrap();
    let stored: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&raw).lines().nth(line).unwrap()).unwrap();
    assert_eq!(stored["id"], first.external_id);
    assert!(
        storage
            .events
            .identity_id("echo", "ada")
            .await
            .unwrap()
            .is_some()
    );

    let again = run(&ex, "d-1").await.expect("handled again");
    assert_eq!(again["eventsStored"], 0, "{again}");
    assert_eq!(again["duplicates"], 2, "{again}");
}

/// A job naming a delivery that is not stored fails at once, naming it.
#[tokio::test]
async fn an_unknown_delivery_fails_permanently_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let echo = echo();
    let ex = executor(
        dir.path(),
        &[echo.as_path()],
        policy(&[(WEBHOOK_SECRET_KEY, KEY)]),
    )
    .await;
    let e = run(&ex, "never-stored").await.expect_err("not stored");
    assert_eq!(e.code(), "invalid-job", "{e}");
    assert_eq!(e.retry(), Retry::No, "{e}");
    assert!(
        e.to_string()
            .contains("webhook delivery `never-stored` of plugin `webhook-echo` is not stored"),
        "{e}"
    );
    // A malformed reference is refused before any instance starts.
    let bad = job(
        "j",
        json!({"type": "event_ingestion", "input": {"pluginId": "webhook-echo", "webhookDelivery": 7}}),
    );
    let e = ex.execute(&bad, None).await.expect_err("a number").failure;
    assert!(
        e.to_string()
            .contains("input.webhookDelivery must name a stored delivery"),
        "{e}"
    );
}

/// A body the plugin cannot read fails the job permanently with the plugin's message;
/// nothing is stored.
#[tokio::test]
async fn a_malformed_delivery_fails_permanently_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let echo = echo();
    let ex = executor(
        dir.path(),
        &[echo.as_path()],
        policy(&[(WEBHOOK_SECRET_KEY, KEY)]),
    )
    .await;
    let mut d = delivery("d-bad", json!({}));
    d.body = bytes::Bytes::from_static(b"not json");
    ex.storage().webhooks.save_delivery(&d).await.unwrap();
    let e = run(&ex, "d-bad").await.expect_err("not JSON");
    assert_eq!(e.code(), "plugin-permanent", "{e}");
    assert!(
        e.to_string()
            .contains("delivery d-bad is not the JSON expected"),
        "{e}"
    );
    let events = ex
        .storage()
        .events
        .list_events(&EventFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(events.is_empty());
}

/// Webhook-only plugins run delivery jobs only, and delivery jobs need a plugin that
/// receives webhooks; each refusal says what the job needs.
#[tokio::test]
async fn jobs_reach_only_plugins_of_the_kind_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let echo = echo();
    let hostile = component("hostile-plugin");
    let ex = executor(
        dir.path(),
        &[echo.as_path(), hostile.as_path()],
        policy(&[(WEBHOOK_SECRET_KEY, KEY)]),
    )
    .await;
    let fetch = job(
        "f",
        json!({"type": "event_ingestion", "input": {"pluginId": "webhook-echo"}}),
    );
    let e = ex
        .execute(&fetch, None)
        .await
        .expect_err("no ingest")
        .failure;
    assert_eq!(e.code(), "plugin-not-found");
    assert_eq!(
        e.to_string(),
        "plugin `webhook-echo` implements webhook-plugin, but event_ingestion jobs need an ingestion-plugin plugin"
    );
    let to_hostile = job(
        "h",
        json!({"type": "event_ingestion", "input": {"pluginId": "hostile", "webhookDelivery": "d"}}),
    );
    let e = ex
        .execute(&to_hostile, None)
        .await
        .expect_err("no webhooks")
        .failure;
    assert_eq!(
        e.to_string(),
        "plugin `hostile` implements ingestion-plugin, but event_ingestion jobs need a plugin that receives webhooks (webhook-plugin or connector-plugin)"
    );
}

/// The key is the host's: the registry holds it for the endpoint, the plugin's config
/// does not (the echo plugin fails a delivery if `config.secret` gives it the key, and
/// the first test sees deliveries handled), and it joins the plugin's redactor. Unset
/// or empty, there is no key.
#[tokio::test]
async fn the_webhook_secret_is_kept_from_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let echo = echo();
    let ex = executor(
        dir.path(),
        &[echo.as_path()],
        policy(&[(WEBHOOK_SECRET_KEY, KEY)]),
    )
    .await;
    let plugin = ex.registry().get("webhook-echo").expect("installed");
    assert_eq!(
        plugin.webhook_secret.as_ref().map(|k| k.as_bytes()),
        Some(KEY.as_bytes())
    );
    assert!(!plugin.env.config.secrets.contains_key(WEBHOOK_SECRET_KEY));
    assert!(!plugin.env.config.values.contains_key(WEBHOOK_SECRET_KEY));
    assert!(
        !plugin
            .env
            .redactor
            .clean(&format!("key={KEY}"))
            .contains(KEY)
    );
    assert!(!format!("{plugin:?}").contains(KEY));

    for config in [&[][..], &[(WEBHOOK_SECRET_KEY, "")][..]] {
        let dir = tempfile::tempdir().unwrap();
        let ex = executor(dir.path(), &[echo.as_path()], policy(config)).await;
        let plugin = ex.registry().get("webhook-echo").expect("installed");
        assert!(plugin.webhook_secret.is_none(), "{config:?}");
    }
}
