//! The github plugin through the host, against recorded GitHub API responses served on
//! loopback: paging, the cursor across runs, idempotent re-runs, rate limits, grants.

use drowl_host::jobs::{HostPolicy, JobFailure, PluginErrorKind, PluginSettings, Retry};
use drowl_host::storage::EventFilter;
use fixture_server::{Options, ServerHandle};
use serde_json::json;

use crate::support::*;

async fn server(expect_token: Option<&str>) -> ServerHandle {
    let mut o = Options::new(fixture_server::github_fixtures());
    o.expect_token = expect_token.map(str::to_owned);
    fixture_server::start_with(o).await.unwrap().1
}

fn policy(api: &str, grant: &str, allow_loopback: bool, token: Option<&str>) -> HostPolicy {
    let mut config: std::collections::BTreeMap<String, String> =
        [("api-base-url".to_owned(), api.to_owned())].into();
    if let Some(t) = token {
        config.insert("token".into(), t.into());
    }
    let mut p = HostPolicy {
        default_grants: vec![grant.to_owned()],
        allowed_networks: if allow_loopback {
            vec!["127.0.0.1/32".parse().unwrap()]
        } else {
            vec![]
        },
        ..HostPolicy::default()
    };
    p.plugins.insert(
        "github".into(),
        PluginSettings {
            config,
            grants: vec![],
            ..PluginSettings::default()
        },
    );
    p
}

fn user_job(user: &str) -> serde_json::Value {
    json!({ "type": "event_ingestion", "name": "github-events",
            "input": { "pluginId": "github-plugin", "source": "github", "user": user } })
}

/// First run pages through everything; after new activity appears, the next run fetches
/// only until it reaches what it already has; a reset re-run stores nothing twice.
#[tokio::test]
async fn pages_resume_at_the_high_water_mark_and_reruns_are_idempotent() {
    high_water_mark(component("github-plugin")).await;
}

/// The same, unchanged, with the github component built against contract 0.1.0 before
/// 0.2.0 existed (issue #12: every 0.1.0 component keeps loading and running).
#[tokio::test]
async fn a_github_component_built_for_contract_0_1_0_passes_the_same_test() {
    high_water_mark(contract_0_1_0_fixture("github_plugin.wasm")).await;
}

async fn high_water_mark(github: std::path::PathBuf) {
    let srv = server(Some("ghp_fixture_token")).await;
    let api = srv.base_url();
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(
        dir.path(),
        &[&github],
        policy(&api, &api, true, Some("ghp_fixture_token")),
    )
    .await;

    let first = exec
        .execute(&job("gh-1", user_job("octocat")), None)
        .await
        .unwrap();
    assert_eq!(first.output["pages"], 3, "{}", first.output);
    assert_eq!(first.output["eventsStored"], 77);
    assert_eq!(first.output["hasMore"], false);
    assert!(first.output["identities"].as_u64().unwrap() >= 1);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs.iter().all(
            |r| r.headers.get("authorization").map(String::as_str) == Some("Bearer <redacted>")
        )
    );
    let report = first.report.unwrap();
    assert_eq!(report.usage.http_requests, 3);
    assert!(!format!("{:?}", report.logs).contains("ghp_fixture_token"));

    srv.set_fixture_set("octocat-later").unwrap();
    srv.clear_requests();
    let second = exec
        .execute(&job("gh-2", user_job("octocat")), None)
        .await
        .unwrap()
        .output;
    assert_eq!(second["eventsStored"], 5, "only the new events: {second}");
    assert_eq!(
        srv.requests().len(),
        1,
        "the high-water mark is on page 1: {:?}",
        srv.requests()
    );

    let events = exec
        .storage()
        .events
        .list_events(&EventFilter::default(), None, 1000)
        .await
        .unwrap();
    assert_eq!(events.len(), 82);
    let e = &events[0];
    assert_eq!(e.source, "github");
    assert!(
        e.raw_payload.get("type").is_some(),
        "raw payload kept as received"
    );
    assert!(e.actor.as_ref().is_some_and(|(p, _)| p == "github"));

    let mut again = user_job("octocat");
    again["input"]["reset"] = json!(true);
    let third = exec
        .execute(&job("gh-3", again), None)
        .await
        .unwrap()
        .output;
    assert_eq!(third["eventsStored"], 0);
    assert_eq!(third["duplicates"], 82);
    let events = exec
        .storage()
        .events
        .list_events(&EventFilter::default(), None, 1000)
        .await
        .unwrap();
    assert_eq!(events.len(), 82);
    srv.shutdown().await.unwrap();
}

/// GitHub's rate limit becomes a rate-limited failure with a retry delay; a 5xx is
/// retryable and the retry completes.
#[tokio::test]
async fn rate_limits_and_server_errors_carry_queue_meaning() {
    let srv = server(None).await;
    let api = srv.base_url();
    let dir = tempfile::tempdir().unwrap();
    let github = component("github-plugin");
    let exec = executor(dir.path(), &[&github], policy(&api, "*", true, None)).await;

    let err = exec
        .execute(&job("rl", user_job("ratelimited")), None)
        .await
        .unwrap_err();
    match &err.failure {
        JobFailure::Plugin {
            kind: PluginErrorKind::RateLimited,
            retry_after: Some(d),
            ..
        } => {
            assert!(d.as_secs() > 0 && d.as_secs() <= 120, "{d:?}");
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert!(matches!(err.failure.retry(), Retry::Yes(Some(_))));

    let err = exec
        .execute(&job("flaky-1", user_job("flaky")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err.failure.retry(), Retry::Yes(_)),
        "{}",
        err.failure
    );
    let ok = exec
        .execute(&job("flaky-2", user_job("flaky")), None)
        .await
        .unwrap();
    assert!(
        ok.output["eventsStored"].as_u64().unwrap() > 0,
        "{}",
        ok.output
    );

    let err = exec
        .execute(&job("404", user_job("nobody-here")), None)
        .await
        .unwrap_err();
    assert!(matches!(err.failure.retry(), Retry::No), "{}", err.failure);
    srv.shutdown().await.unwrap();
}

/// The plugin reaches the fixture server only when the operator grants that origin and
/// allows loopback; otherwise the request is denied and nothing reaches the server.
#[tokio::test]
async fn the_api_is_reachable_only_when_granted() {
    let srv = server(None).await;
    let api = srv.base_url();
    let github = component("github-plugin");

    for (grant, loopback) in [("https://api.github.com", true), (api.as_str(), false)] {
        let dir = tempfile::tempdir().unwrap();
        let exec = executor(dir.path(), &[&github], policy(&api, grant, loopback, None)).await;
        let err = exec
            .execute(&job("deny", user_job("octocat")), None)
            .await
            .unwrap_err();
        let msg = err.failure.to_string();
        assert!(
            msg.contains("denied"),
            "grant {grant} loopback {loopback}: {msg}"
        );
        assert_eq!(err.failure.code(), "invalid-config");
    }
    assert!(
        srv.requests().is_empty(),
        "a denied request must not reach the server"
    );
    srv.shutdown().await.unwrap();
}
