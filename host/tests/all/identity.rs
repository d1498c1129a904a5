//! Security matrix row 29: a plugin is who the operator installed it as, not whoever its
//! manifest says, and what the operator says is secret is redacted whatever the manifest
//! calls it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use drowl_host::jobs::{
    Executor, HostPolicy, InstallError, InstallPlan, PluginSettings, ReadyPlugin, Registry,
};
use drowl_host::runtime::{EngineSettings, Runtime};
use serde_json::json;

use crate::support::*;

const TOKEN: &str = "ghp_row29OperatorsToken";

fn runtime() -> drowl_host::capabilities::PluginRuntime {
    Runtime::new(&EngineSettings {
        cache_dir: Some(root().join("target/drowl-test-cache")),
        ..EngineSettings::default()
    })
    .unwrap()
}

fn policy(plugins: &[(&str, PluginSettings)]) -> HostPolicy {
    let mut p = HostPolicy::default();
    for (id, s) in plugins {
        p.plugins.insert((*id).to_owned(), s.clone());
    }
    p
}

fn with_config(config: &[(&str, &str)]) -> PluginSettings {
    PluginSettings {
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..PluginSettings::default()
    }
}

/// A plugins directory with copies of components under the given names.
fn plugins_dir(files: &[(&Path, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (c, name) in files {
        std::fs::copy(c, dir.path().join(name)).unwrap();
    }
    dir
}

/// Installs a plugins directory as `serve` does: plan, load, build.
async fn install(
    plugins: &Path,
    data: &Path,
    policy: &HostPolicy,
) -> Result<Executor, InstallError> {
    let storage = drowl_host::storage::open_embedded(data).await.unwrap();
    let runtime = runtime();
    let plan = InstallPlan::new(plugins, &policy.plugins)?;
    let mut loaded = Vec::new();
    for f in plan.files() {
        loaded.push((f.to_path_buf(), runtime.load_file(f).await.unwrap()));
    }
    let registry = plan.build(loaded, policy, &storage)?;
    Ok(Executor::new(runtime, storage, registry))
}

fn refusal(r: Result<Executor, InstallError>) -> InstallError {
    match r {
        Ok(e) => panic!("installed: {:?}", e.registry().ids()),
        Err(e) => e,
    }
}

/// The attack of the issue: a component declaring another plugin's id, placed first
/// alphabetically, used to be loaded as that plugin and handed its token. Whatever file
/// name it has, a component that declares an id other than the one it is installed as is
/// refused, the file, both ids and the fix named.
#[tokio::test]
async fn a_component_declaring_another_id_is_refused() {
    let hostile = component("hostile-plugin");
    let data = tempfile::tempdir().unwrap();
    let settings = policy(&[("hostile", with_config(&[("token", TOKEN)]))]);

    // An impostor first alphabetically, next to the real one.
    let dir = plugins_dir(&[(&hostile, "aaa.wasm"), (&hostile, "hostile_plugin.wasm")]);
    let e = refusal(install(dir.path(), data.path(), &settings).await);
    let msg = e.to_string();
    assert!(matches!(e, InstallError::IdMismatch { .. }), "{msg}");
    assert!(
        msg.contains("aaa.wasm is installed as `aaa` (from its file name), but its manifest declares `hostile`"),
        "{msg}"
    );

    // Named for the plugin whose settings it wants.
    let settings = policy(&[("github", with_config(&[("token", TOKEN)]))]);
    let dir = plugins_dir(&[(&hostile, "github.wasm")]);
    let msg = refusal(install(dir.path(), data.path(), &settings).await).to_string();
    assert!(
        msg.contains("github.wasm is installed as `github`")
            && msg.contains("declares `hostile`")
            && msg.contains("rename it to hostile.wasm"),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN), "{msg}");
}

/// Two files that would be one plugin are refused before anything is loaded.
#[tokio::test]
async fn two_files_for_one_id_are_refused_with_both_named() {
    let hostile = component("hostile-plugin");
    let dir = plugins_dir(&[
        (&hostile, "hostile.wasm"),
        (&hostile, "hostile-plugin.wasm"),
    ]);
    let e = InstallPlan::new(dir.path(), &Default::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, InstallError::Duplicate { .. }), "{msg}");
    assert!(
        msg.contains("hostile.wasm") && msg.contains("hostile-plugin.wasm"),
        "{msg}"
    );
}

/// The operator may pin an id to a file of any name and to its digest; only that file
/// with that digest gets the id's settings.
#[tokio::test]
async fn a_pinned_file_gets_its_id_only_with_the_pinned_digest() {
    let hostile = component("hostile-plugin");
    let digest = runtime().load_file(&hostile).await.unwrap().sha256;
    let data = tempfile::tempdir().unwrap();
    let dir = plugins_dir(&[(&hostile, "build-1234.wasm")]);
    let pinned = |sha: &str| {
        policy(&[(
            "hostile",
            PluginSettings {
                file: Some("build-1234.wasm".into()),
                sha256: Some(sha.into()),
                ..with_config(&[("token", TOKEN)])
            },
        )])
    };

    let exec = install(dir.path(), data.path(), &pinned(&digest))
        .await
        .unwrap();
    assert_eq!(exec.registry().ids(), ["hostile"]);
    let err = exec
        .execute(
            &job("leak", json!({"type": "event_ingestion", "name": "x", "input": {"pluginId": "hostile", "mode": "leak-secret"}})),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.failure.to_string().contains("[REDACTED]"),
        "{}",
        err.failure
    );

    let other = "0".repeat(64);
    let e = refusal(install(dir.path(), data.path(), &pinned(&other)).await);
    let msg = e.to_string();
    assert!(matches!(e, InstallError::DigestMismatch { .. }), "{msg}");
    assert!(
        msg.contains("build-1234.wasm") && msg.contains(&digest) && msg.contains(&other),
        "{msg}"
    );
}

/// Settings, key-value namespace and object prefix are the operator's id's: a plugin
/// prepared as `other` gets `other`'s config and namespace, never those of the id its
/// manifest declares; `x` and `x-plugin` cannot both be registered.
#[tokio::test]
async fn the_operators_id_keys_settings_and_storage() {
    let loaded = runtime()
        .load_file(&component("hostile-plugin"))
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let storage = drowl_host::storage::open_embedded(data.path())
        .await
        .unwrap();
    let p = policy(&[
        ("hostile", with_config(&[("token", "hostiles-own-token")])),
        ("other", with_config(&[("token", TOKEN)])),
    ]);
    let ready = ReadyPlugin::prepare_as("other".into(), loaded.clone(), &p, &storage).unwrap();
    assert_eq!(ready.id(), "other");
    assert_eq!(ready.env.kv_namespace(), "other");
    assert_eq!(ready.env.config.secrets["token"], TOKEN);

    let mut registry = Registry::default();
    registry
        .insert(
            ReadyPlugin::prepare_as("hostile-plugin".into(), loaded.clone(), &p, &storage).unwrap(),
        )
        .unwrap();
    let e = registry
        .insert(ReadyPlugin::prepare_as("hostile".into(), loaded, &p, &storage).unwrap())
        .unwrap_err();
    assert!(
        e.to_string().contains("`x` and `x-plugin` count as one"),
        "{e}"
    );
}

/// A value the manifest declares a plain string is redacted from the job's error and logs
/// once the operator marks it secret; unmarked, the plugin prints it (the control).
#[tokio::test]
async fn plain_values_the_operator_marks_secret_are_redacted() {
    const LABEL: &str = "row29-plain-declared-value";
    let hostile = component("hostile-plugin");
    let dir = plugins_dir(&[(&hostile, "hostile_plugin.wasm")]);
    let leak = json!({"type": "event_ingestion", "name": "x", "input": {"pluginId": "hostile", "mode": "leak-config"}});
    for marked in [false, true] {
        let data = tempfile::tempdir().unwrap();
        let settings = PluginSettings {
            secret_keys: if marked {
                BTreeSet::from(["label".to_owned()])
            } else {
                BTreeSet::new()
            },
            ..with_config(&[("label", LABEL)])
        };
        let exec = install(dir.path(), data.path(), &policy(&[("hostile", settings)]))
            .await
            .unwrap();
        let err = exec
            .execute(&job("leak", leak.clone()), None)
            .await
            .unwrap_err();
        let everything = format!("{} {:?}", err.failure, err.report.unwrap().logs);
        assert!(everything.contains("failing with label"), "{everything}");
        assert_eq!(
            everything.contains(LABEL),
            !marked,
            "marked {marked}: {everything}"
        );
        assert_eq!(
            everything.contains("[REDACTED]"),
            marked,
            "marked {marked}: {everything}"
        );
    }
}

/// The same components the daemon tests install keep their ids.
#[test]
fn the_test_components_file_names_are_their_ids() {
    for (package, id) in [
        ("hostile-plugin", "hostile"),
        ("keywords-plugin", "keywords"),
        ("github-plugin", "github"),
    ] {
        let file: PathBuf = component(package);
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            drowl_host::jobs::install::id_for_file_name(name).as_deref(),
            Ok(id)
        );
    }
}
