//! Issue #11: `identity_resolution` without ids runs the first-party `identity` plugin
//! (contract 0.2.0) over the identities stored since its last run, and writes the links it
//! proposes as `plugin_heuristic`, never over a link a person made or removed.

use drowl_host::jobs::{Executor, HostPolicy};
use drowl_host::storage::IdentityRecord;
use serde_json::{Value, json};

use crate::support::*;

fn account(platform: &str, user: &str, name: &str, metadata: Value) -> IdentityRecord {
    let host = match platform {
        "github" => "github.com",
        "zenn" => "zenn.dev",
        "qiita" => "qiita.com",
        _ => "x.com",
    };
    IdentityRecord {
        platform: platform.into(),
        platform_user_id: format!("{platform}-{user}"),
        platform_username: Some(user.into()),
        display_name: Some(name.into()),
        profile_url: Some(format!("https://{host}/{user}")),
        avatar_url: None,
        metadata,
    }
}

/// drowl's job, as its API would enqueue a resolution run (no ids: the plugin decides).
fn resolve_job() -> Value {
    json!({ "type": "identity_resolution", "name": "resolve-identities", "input": {} })
}

async fn id(exec: &Executor, platform: &str, user: &str) -> String {
    exec.storage()
        .events
        .identity_id(platform, &format!("{platform}-{user}"))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{platform}/{user} is stored"))
}

/// The links as stored: (id1, id2, confidence, link_source, is_active, reason).
async fn links(dir: &std::path::Path) -> Vec<(String, String, String, String, i64, String)> {
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        dir.join("drowl.db").display()
    ))
    .await
    .unwrap();
    sqlx::query_as(
        "SELECT identity_id_1, identity_id_2, confidence, link_source, is_active, \
         coalesce(reason, '') FROM identity_links ORDER BY identity_id_1, identity_id_2, created_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a < b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

#[tokio::test]
async fn the_identity_plugin_links_on_real_signals_incrementally_and_respects_people() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(
        dir.path(),
        &[&component("identity-plugin")],
        HostPolicy::default(),
    )
    .await;
    let events = &exec.storage().events;
    events
        .upsert_identities(&[
            // Same username and the same Japanese name (ideographic space): linked.
            account("github", "hanako", "山田 花子", json!({})),
            account("zenn", "hanako", "山田　花子", json!({})),
            // Same commit e-mail, different handles: linked.
            account(
                "github",
                "kenji",
                "Kenji",
                json!({"email": "kenji@example.org"}),
            ),
            account(
                "qiita",
                "k_dev",
                "KD",
                json!({"email": "Kenji@Example.org"}),
            ),
            // Same common name only: not linked.
            account("github", "jsmith1", "John Smith", json!({})),
            account("x", "john_s", "John Smith", json!({})),
            // Same username only: not linked.
            account("github", "alex", "Alex A", json!({})),
            account("x", "alex", "Alexandra B", json!({})),
            // A person linked these two by hand, then removed the link: never brought back.
            account("github", "sora", "Sora", json!({})),
            account("zenn", "sora", "Sora", json!({})),
        ])
        .await
        .unwrap();
    let (sora_gh, sora_zenn) = (
        id(&exec, "github", "sora").await,
        id(&exec, "zenn", "sora").await,
    );
    let manual = json!({ "type": "identity_resolution", "name": "link-identities",
        "input": { "identityId1": sora_gh, "identityId2": sora_zenn, "confidence": "manual" } });
    exec.execute(&job("manual", manual), None).await.unwrap();
    {
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path().join("drowl.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("UPDATE identity_links SET is_active = 0")
            .execute(&pool)
            .await
            .unwrap();
    }

    let out = exec.execute(&job("r1", resolve_job()), None).await.unwrap();
    assert_eq!(out.output["pluginId"], "identity", "{}", out.output);
    assert_eq!(out.output["identitiesRead"], 10, "{}", out.output);
    assert_eq!(out.output["linksCreated"], 2, "{}", out.output);
    let rows = links(dir.path()).await;
    let heuristic: Vec<_> = rows
        .iter()
        .filter(|r| r.3 == "plugin_heuristic")
        .map(|r| (r.0.clone(), r.1.clone()))
        .collect();
    let hanako = pair(
        &id(&exec, "github", "hanako").await,
        &id(&exec, "zenn", "hanako").await,
    );
    let kenji = pair(
        &id(&exec, "github", "kenji").await,
        &id(&exec, "qiita", "k_dev").await,
    );
    let mut expected = vec![hanako.clone(), kenji.clone()];
    expected.sort();
    let mut got = heuristic.clone();
    got.sort();
    assert_eq!(got, expected, "{rows:?}");
    let kenji_row = rows
        .iter()
        .find(|r| (r.0.clone(), r.1.clone()) == kenji)
        .unwrap();
    assert_eq!(
        kenji_row.2, "high",
        "a shared e-mail is strong: {kenji_row:?}"
    );
    assert!(
        kenji_row.5.contains("e-mail"),
        "reason says why: {kenji_row:?}"
    );
    // The removed manual link is still the pair's only row, inactive.
    let sora: Vec<_> = rows
        .iter()
        .filter(|r| (r.0.clone(), r.1.clone()) == pair(&sora_gh, &sora_zenn))
        .collect();
    assert_eq!(sora.len(), 1, "{sora:?}");
    assert_eq!((sora[0].3.as_str(), sora[0].4), ("user_manual", 0));

    // A second run right away: re-reads the last minute (late commits) and writes nothing.
    let again = exec.execute(&job("r2", resolve_job()), None).await.unwrap();
    assert_eq!(again.output["linksCreated"], 0, "{}", again.output);
    assert_eq!(links(dir.path()).await.len(), rows.len());

    // A new account later: found through the plugin's index, linked to the old one.
    events
        .upsert_identities(&[account(
            "qiita",
            "hanako",
            "Yamada Hanako",
            json!({"github_login_name": "hanako"}),
        )])
        .await
        .unwrap();
    let third = exec.execute(&job("r3", resolve_job()), None).await.unwrap();
    assert_eq!(third.output["linksCreated"], 1, "{}", third.output);
    let new = pair(
        &id(&exec, "github", "hanako").await,
        &id(&exec, "qiita", "hanako").await,
    );
    assert!(
        links(dir.path())
            .await
            .iter()
            .any(|r| (r.0.clone(), r.1.clone()) == new && r.3 == "plugin_heuristic"),
        "qiita/hanako points at github/hanako with the same username"
    );
}

#[tokio::test]
async fn a_malformed_resume_point_fails_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(
        dir.path(),
        &[&component("identity-plugin")],
        HostPolicy::default(),
    )
    .await;
    let bad = json!({ "type": "identity_resolution", "name": "resolve-identities",
                      "input": { "resumeAfter": "yesterday" } });
    let e = exec.execute(&job("bad", bad), None).await.unwrap_err();
    assert_eq!(e.failure.retry(), drowl_host::jobs::Retry::No);
    assert!(
        e.failure.to_string().contains("resumeAfter"),
        "{}",
        e.failure
    );
}
