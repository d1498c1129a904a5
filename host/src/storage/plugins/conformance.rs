//! The rules every [`PluginStore`] follows, checked the same way on every backend: the
//! memory and SQLite stores run [`plugin_rows_follow_the_rules`] as unit tests, PostgreSQL
//! from `tests/storage_postgres.rs` (through the `test-support` feature).
//!
//! Ids are fresh per run, so the checks can share a database with other tests.

use serde_json::json;

use super::{PluginComponent, PluginRow, PluginStore};

/// A component as `plugin install` would record it, version `version`, content `sha`.
pub fn component(id: &str, version: &str, sha: &str) -> PluginComponent {
    PluginComponent {
        name: format!("Plugin {id}"),
        version: version.to_owned(),
        description: Some(format!("{id} {version}")),
        author_name: Some("drowl".into()),
        author_email: None,
        author_url: Some("https://drowl.invalid".into()),
        manifest: json!({"id": id, "version": version, "capabilities": ["event_ingestion"]}),
        sha256: sha.to_owned(),
    }
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

async fn row(s: &dyn PluginStore, id: &str) -> PluginRow {
    s.plugin(id)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("row {id}"))
}

/// Install, enable and disable, upgrade, load errors, remove and reinstall, and
/// components by content.
pub async fn plugin_rows_follow_the_rules(s: &dyn PluginStore) {
    let tag = crate::storage::conformance::tag();
    let id = format!("p-{tag}");
    let other = format!("q-{tag}");
    let config = json!({"token": "${GITHUB_TOKEN}", "user": "octocat"});

    // Install: every column from the component, config as written, enabled.
    assert!(s.plugin(&id).await.expect("read").is_none());
    let v1 = component(&id, "1.0.0", &sha(1));
    assert!(
        s.install_plugin(&id, &v1, &config, true)
            .await
            .expect("install")
    );
    let r = row(s, &id).await;
    assert_eq!(
        (
            r.name.as_str(),
            r.version.as_str(),
            r.description.as_deref()
        ),
        (v1.name.as_str(), "1.0.0", v1.description.as_deref())
    );
    assert_eq!(r.author_name.as_deref(), Some("drowl"));
    assert_eq!(r.author_url.as_deref(), Some("https://drowl.invalid"));
    assert_eq!(r.manifest, v1.manifest);
    assert_eq!(r.config, config, "secrets stay `${{VAR}}` references");
    assert!(r.is_installed && r.is_enabled && r.runs());
    assert!(r.installed_at.is_some() && r.enabled_at.is_some() && r.disabled_at.is_none());
    assert_eq!(r.component_sha256, Some(sha(1)));
    assert_eq!(r.last_error, None);

    // The id is taken: nothing changes.
    let v2 = component(&id, "2.0.0", &sha(2));
    assert!(
        !s.install_plugin(&id, &v2, &json!({}), false)
            .await
            .expect("install again")
    );
    assert_eq!(row(s, &id).await, r);

    // A second plugin, installed disabled; rows list by id.
    assert!(
        s.install_plugin(
            &other,
            &component(&other, "0.1.0", &sha(3)),
            &json!({}),
            false
        )
        .await
        .expect("install other")
    );
    let o = row(s, &other).await;
    assert!(o.is_installed && !o.is_enabled && !o.runs());
    assert!(o.enabled_at.is_none() && o.disabled_at.is_some());
    let listed: Vec<String> = s
        .plugins()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .filter(|i| i.ends_with(&tag))
        .collect();
    assert_eq!(listed, [id.clone(), other.clone()]);

    // Disable and enable: the timestamp of each change, unknown ids refused.
    assert!(s.set_plugin_enabled(&id, false).await.expect("disable"));
    let d = row(s, &id).await;
    assert!(!d.is_enabled && d.disabled_at.is_some());
    assert_eq!(d.enabled_at, r.enabled_at);
    assert!(s.set_plugin_enabled(&id, true).await.expect("enable"));
    let e = row(s, &id).await;
    assert!(e.is_enabled && e.enabled_at >= r.enabled_at);
    assert_eq!(e.disabled_at, d.disabled_at);
    assert!(
        !s.set_plugin_enabled(&format!("nope-{tag}"), true)
            .await
            .expect("unknown id")
    );

    // Upgrade: component, manifest and version replaced; config kept unless given;
    // enabled untouched.
    assert!(
        s.upgrade_plugin(&id, &v2, None)
            .await
            .expect("upgrade keeping config")
    );
    let u = row(s, &id).await;
    assert_eq!(
        (u.version.as_str(), u.component_sha256.as_deref()),
        ("2.0.0", Some(sha(2).as_str()))
    );
    assert_eq!(u.manifest, v2.manifest);
    assert_eq!(u.config, config);
    assert!(u.is_enabled);
    let new_config = json!({"user": "drowl"});
    assert!(
        s.upgrade_plugin(&id, &v2, Some(&new_config))
            .await
            .expect("upgrade with config")
    );
    assert_eq!(row(s, &id).await.config, new_config);
    assert!(
        !s.upgrade_plugin(&format!("nope-{tag}"), &v2, None)
            .await
            .expect("unknown id")
    );

    // Load errors: set with a time, unchanged when the same again, cleared.
    s.record_plugin_load(&id, Some("boom"))
        .await
        .expect("record error");
    let f = row(s, &id).await;
    assert_eq!(f.last_error.as_deref(), Some("boom"));
    let at = f.last_error_at.expect("last_error_at");
    s.record_plugin_load(&id, Some("boom"))
        .await
        .expect("same error");
    assert_eq!(row(s, &id).await.last_error_at, Some(at), "no rewrite");
    s.record_plugin_load(&id, None).await.expect("clear");
    let c = row(s, &id).await;
    assert_eq!((c.last_error, c.last_error_at), (None, None));
    // An unknown id is not an error (the row may have just been deleted).
    s.record_plugin_load(&format!("nope-{tag}"), Some("x"))
        .await
        .expect("unknown id");

    // Remove keeps the row, not installed and not enabled; a second remove is refused,
    // and so is enabling it; install takes the row over with its new config.
    assert!(s.uninstall_plugin(&id).await.expect("remove"));
    let gone = row(s, &id).await;
    assert!(!gone.is_installed && !gone.is_enabled && !gone.runs());
    assert!(!s.uninstall_plugin(&id).await.expect("remove again"));
    assert!(
        !s.set_plugin_enabled(&id, true)
            .await
            .expect("enable removed")
    );
    assert!(
        !s.upgrade_plugin(&id, &v1, None)
            .await
            .expect("upgrade removed")
    );
    s.record_plugin_load(&id, Some("stale"))
        .await
        .expect("error");
    assert!(
        s.install_plugin(&id, &v1, &json!({"user": "again"}), true)
            .await
            .expect("reinstall")
    );
    let again = row(s, &id).await;
    assert!(again.is_installed && again.is_enabled);
    assert_eq!(again.version, "1.0.0");
    assert_eq!(again.config, json!({"user": "again"}));
    assert_eq!(
        again.last_error, None,
        "a reinstall starts without an error"
    );

    // Components by content: stored once, read back byte for byte.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let key = format!("{tag}{}", "0".repeat(64 - tag.len()));
    assert_eq!(s.component(&key).await.expect("missing"), None);
    s.put_component(&key, &bytes).await.expect("put");
    s.put_component(&key, &bytes).await.expect("put again");
    assert_eq!(s.component(&key).await.expect("get"), Some(bytes));
}
