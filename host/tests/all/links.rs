//! Issue #11: an `identity_resolution` job naming two identities (drowl's API, when a
//! person links two accounts by hand) is applied by the host itself, no plugin involved.

use drowl_host::jobs::{HostPolicy, Retry};
use drowl_host::storage::IdentityRecord;
use serde_json::json;

use crate::support::*;

fn account(platform: &str, user: &str) -> IdentityRecord {
    IdentityRecord {
        platform: platform.into(),
        platform_user_id: user.into(),
        platform_username: Some(format!("{user}-handle")),
        display_name: None,
        profile_url: None,
        avatar_url: None,
        metadata: json!({}),
    }
}

/// drowl's API's payload, verbatim.
fn link_job(a: &str, b: &str) -> serde_json::Value {
    json!({ "type": "identity_resolution", "name": "link-identities",
            "input": { "identityId1": a, "identityId2": b, "confidence": "high" } })
}

#[tokio::test]
async fn a_link_request_is_written_by_the_host_and_bad_ones_fail_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path(), &[], HostPolicy::default()).await;
    let events = &exec.storage().events;
    events
        .upsert_identities(&[account("github", "1"), account("x", "2")])
        .await
        .unwrap();
    let gh = events.identity_id("github", "1").await.unwrap().unwrap();
    let x = events.identity_id("x", "2").await.unwrap().unwrap();
    let (one, two) = if gh < x { (&gh, &x) } else { (&x, &gh) };

    // Asked with the larger id first: stored (and reported) as the ordered pair.
    let out = exec
        .execute(&job("l1", link_job(two, one)), None)
        .await
        .unwrap();
    assert!(out.report.is_none(), "no plugin ran");
    assert_eq!(
        out.output,
        json!({"linked": true, "identityId1": one, "identityId2": two,
               "confidence": "high", "outcome": "created"})
    );
    // The same request again updates the pair's one active link.
    let again = exec
        .execute(&job("l2", link_job(one, two)), None)
        .await
        .unwrap();
    assert_eq!(again.output["outcome"], "updated");

    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        dir.path().join("drowl.db").display()
    ))
    .await
    .unwrap();
    let rows: Vec<(String, String, String, String, f64, i64)> = sqlx::query_as(
        "SELECT identity_id_1, identity_id_2, confidence, link_source, confidence_score, \
         is_active FROM identity_links",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (&r.0, &r.1, r.2.as_str(), r.3.as_str(), r.5),
        (one, two, "high", "user_manual", 1)
    );
    assert!((r.4 - 0.9).abs() < 1e-6, "{r:?}");

    let fails = |input: serde_json::Value, needle: &'static str| {
        let exec = &exec;
        async move {
            let j =
                json!({"type": "identity_resolution", "name": "link-identities", "input": input});
            let e = exec.execute(&job("bad", j), None).await.unwrap_err();
            assert_eq!(e.failure.retry(), Retry::No, "{}", e.failure);
            let msg = e.failure.to_string();
            assert!(msg.contains(needle), "{needle}: {msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    };
    fails(
        json!({"identityId1": one, "confidence": "high"}),
        "`input.identityId2`",
    )
    .await;
    fails(
        json!({"identityId1": 7, "identityId2": two, "confidence": "high"}),
        "`input.identityId1` must be a string",
    )
    .await;
    fails(
        json!({"identityId1": one, "identityId2": one, "confidence": "high"}),
        "the same identity",
    )
    .await;
    fails(
        json!({"identityId1": one, "identityId2": two, "confidence": "certain"}),
        "`input.confidence` `certain` is not one of manual, high, medium, low, suggested",
    )
    .await;
    fails(
        json!({"identityId1": one, "identityId2": two}),
        "`input.confidence`",
    )
    .await;
    fails(
        json!({"identityId1": one, "identityId2": "no-such-identity", "confidence": "low"}),
        "identity `no-such-identity` does not exist",
    )
    .await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM identity_links")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "failed requests write nothing");
}
