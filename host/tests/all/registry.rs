//! The `plugins` table as the registry (issue 13): `drowl-host plugin install|upgrade|
//! list|enable|disable|remove|install-bundled` as a user runs them, on the embedded
//! database and on PostgreSQL; and the daemon's catalog picking up what the CLI, drowl's
//! API (SQL on the table) and the plugins directory change, in process, with real
//! components. The daemon itself (real `serve`, Redis, bull) is in `tests/daemon_registry.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use drowl_host::jobs::catalog::manage::Manager;
use drowl_host::jobs::catalog::{Catalog, CatalogSettings};
use drowl_host::jobs::{Executor, HostPolicy, JobFailure};
use drowl_host::runtime::{EngineSettings, Runtime};
use drowl_host::storage::Storage;
use drowl_testkit::storage::TestDb;
use serde_json::{Value, json};

use crate::support::*;

/// `drowl-host ARGS` in `cwd` with embedded storage (or `DATABASE_URL=db`).
fn cli(args: &[&str], cwd: &Path, db: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drowl-host"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("DROWL_DATA_DIR")
        .env("HOSTILE_TOKEN", "s3cret-from-env");
    if let Some(url) = db {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("run drowl-host")
}

fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        stderr(out)
    );
    stdout_json(out)
}

/// The one-line error of a refused command and its exit code.
fn refused(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    let line = err.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("error: ") && line.contains(needle),
        "{err}"
    );
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn next() -> PathBuf {
    PathBuf::from(drowl_test_artifacts::HOSTILE_PLUGIN_NEXT)
}

/// Install, refusals, enable and disable, upgrade, remove and reinstall, through the
/// binary on the embedded database, and what each leaves in the table and the data
/// directory.
#[test]
fn plugin_commands_manage_the_plugins_table() {
    let hostile = component("hostile-plugin");
    let keywords = component("keywords-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = ["--data-dir", "data"];
    let run = |args: &[&str]| cli(&[args, &data[..]].concat(), d, None);
    let list = || ok(&run(&["plugin", "list", "--json"]));

    // Refused before anything is recorded: not a component, a plain secret, an unknown
    // key, a badly typed value, another id than the manifest's.
    std::fs::write(d.join("text.wasm"), "hello").unwrap();
    refused(
        &run(&["plugin", "install", "text.wasm"]),
        3,
        "is not a WebAssembly file",
    );
    refused(
        &run(&["plugin", "install", "missing.wasm"]),
        2,
        "missing.wasm",
    );
    refused(
        &run(&[
            "plugin",
            "install",
            p(&hostile),
            "--config",
            "token=ghp_plain",
        ]),
        2,
        "config key `token` is a secret of plugin `hostile`; write it as a reference, e.g. --config 'token=${HOSTILE_TOKEN}'",
    );
    refused(
        &run(&["plugin", "install", p(&hostile), "--config", "colour=red"]),
        2,
        "config key `colour` is not declared by plugin `hostile`",
    );
    refused(
        &run(&[
            "plugin",
            "install",
            p(&hostile),
            "--config",
            "target=not a url",
        ]),
        2,
        "`target` must be",
    );
    refused(
        &run(&["plugin", "install", p(&hostile), "--id", "github"]),
        2,
        "declares plugin `hostile`, not `github`",
    );
    assert_eq!(list(), json!([]), "nothing recorded");

    // Installed: the row has the manifest's columns and the config as written (the
    // secret a reference); the component is in the plugin store under its digest and
    // compiled into the cache serve reuses.
    let out = run(&[
        "plugin",
        "install",
        p(&hostile),
        "--config",
        "label=first",
        "--config",
        "token=${HOSTILE_TOKEN}",
    ]);
    let installed = ok(&out);
    assert!(
        stderr(&out).starts_with("installed hostile 0.2.0 (ingestion-plugin"),
        "{}",
        stderr(&out)
    );
    let sha = installed["sha256"].as_str().unwrap().to_owned();
    assert_eq!(installed["enabled"], true);
    let rows = list();
    let row = &rows[0];
    assert_eq!(row["id"], "hostile");
    assert_eq!(row["version"], "0.2.0");
    assert_eq!(row["name"], "Hostile test plugin");
    assert_eq!(row["manifest"]["id"], "hostile");
    assert_eq!(
        row["config"],
        json!({"label": "first", "token": "${HOSTILE_TOKEN}"})
    );
    assert!(!row.to_string().contains("s3cret-from-env"), "{row}");
    assert_eq!(
        (row["isInstalled"].clone(), row["isEnabled"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(row["componentSha256"], json!(sha));
    assert_eq!(
        std::fs::read(d.join("data/components").join(format!("{sha}.wasm"))).unwrap(),
        std::fs::read(&hostile).unwrap()
    );
    assert!(
        std::fs::read_dir(d.join("data/cache"))
            .unwrap()
            .next()
            .is_some(),
        "compiled into the cache"
    );
    let table = run(&["plugin", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("hostile") && l.contains(&sha[..12])),
        "{text}"
    );

    // The id is taken; unknown ids are named with what is installed.
    refused(
        &run(&["plugin", "install", p(&hostile)]),
        2,
        "plugin `hostile` is already installed (version 0.2.0); replace it with `drowl-host plugin upgrade hostile FILE`",
    );
    for cmd in ["enable", "disable", "remove"] {
        refused(
            &run(&["plugin", cmd, "nope"]),
            2,
            "plugin `nope` is not installed; installed plugins: hostile",
        );
    }

    // Disable and enable.
    let off = ok(&run(&["plugin", "disable", "hostile"]));
    assert_eq!(off["isEnabled"], false);
    assert!(off["disabledAt"].is_string());
    assert_eq!(
        ok(&run(&["plugin", "enable", "hostile"]))["isEnabled"],
        true
    );

    // Upgrade: another build of the same plugin; the config is kept; the old component
    // stays in the store for the jobs that started on it. Another plugin's component
    // is refused, and so is an id that is not installed.
    refused(
        &run(&["plugin", "upgrade", "hostile", p(&keywords)]),
        2,
        "declares plugin `keywords`, not `hostile`",
    );
    refused(
        &run(&["plugin", "upgrade", "keywords", p(&keywords)]),
        2,
        "plugin `keywords` is not installed",
    );
    let out = run(&["plugin", "upgrade", "hostile", p(&next())]);
    let up = ok(&out);
    assert_eq!(
        (up["version"].as_str(), up["previousVersion"].as_str()),
        (Some("0.2.0+next"), Some("0.2.0"))
    );
    assert!(
        stderr(&out).starts_with("upgraded hostile 0.2.0 -> 0.2.0+next"),
        "{}",
        stderr(&out)
    );
    let next_sha = up["sha256"].as_str().unwrap().to_owned();
    assert_ne!(next_sha, sha);
    let row = list()[0].clone();
    assert_eq!(row["version"], "0.2.0+next");
    assert_eq!(row["componentSha256"], json!(next_sha));
    assert_eq!(row["config"]["label"], "first", "config kept");
    for s in [&sha, &next_sha] {
        assert!(d.join("data/components").join(format!("{s}.wasm")).exists());
    }
    // The same build with --config only changes the config; without, nothing changes.
    let same = ok(&run(&["plugin", "upgrade", "hostile", p(&next())]));
    assert_eq!(same["unchanged"], true);
    ok(&run(&[
        "plugin",
        "upgrade",
        "hostile",
        p(&next()),
        "--config",
        "label=second",
    ]));
    assert_eq!(list()[0]["config"], json!({"label": "second"}));

    // Remove keeps the row, not installed; enabling it is refused; install takes it over.
    let gone = ok(&run(&["plugin", "remove", "hostile"]));
    assert_eq!(
        (gone["isInstalled"].clone(), gone["isEnabled"].clone()),
        (json!(false), json!(false))
    );
    refused(
        &run(&["plugin", "enable", "hostile"]),
        2,
        "installed plugins: none",
    );
    ok(&run(&["plugin", "install", p(&hostile), "--disabled"]));
    let row = list()[0].clone();
    assert_eq!(
        (row["isInstalled"].clone(), row["isEnabled"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(row["version"], "0.2.0");
    assert_eq!(row["config"], json!({}));
}

/// The first-party plugins a release ships next to the binary install in one command;
/// installed ones are kept unless --upgrade.
#[test]
fn install_bundled_installs_what_ships_with_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = d.join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    for pkg in ["keywords-plugin", "feed-plugin"] {
        let c = component(pkg);
        std::fs::copy(&c, bundle.join(c.file_name().unwrap())).unwrap();
    }
    let run = |args: &[&str]| cli(&[args, &["--data-dir", "data"][..]].concat(), d, None);
    let done = ok(&run(&["plugin", "install-bundled", "--from", "bundle"]));
    let ids: Vec<&str> = done
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["feed", "keywords"]);
    // Again: both up to date, nothing to do.
    let out = run(&["plugin", "install-bundled", "--from", "bundle"]);
    assert_eq!(ok(&out), json!([]));
    assert!(
        stderr(&out).contains("feed 0.2.0 is up to date"),
        "{}",
        stderr(&out)
    );
    // A bundle whose keywords differs: --upgrade replaces it.
    std::fs::remove_file(bundle.join("feed_plugin.wasm")).unwrap();
    std::fs::copy(
        contract_0_1_0_fixture("keywords_plugin.wasm"),
        bundle.join("keywords_plugin.wasm"),
    )
    .unwrap();
    let out = run(&["plugin", "install-bundled", "--from", "bundle"]);
    assert_eq!(ok(&out), json!([]));
    assert!(
        stderr(&out)
            .contains("kept keywords 0.2.0: another build is installed (--upgrade replaces it"),
        "{}",
        stderr(&out)
    );
    let up = ok(&run(&[
        "plugin",
        "install-bundled",
        "--from",
        "bundle",
        "--upgrade",
    ]));
    assert_eq!(up[0]["id"], "keywords");
    assert_eq!(up[0]["witVersion"], "0.1.0");
    refused(
        &run(&["plugin", "install-bundled", "--from", "nowhere"]),
        2,
        "cannot list nowhere",
    );
}

/// With `DATABASE_URL`, the commands write drowl's own `plugins` table in PostgreSQL,
/// and the component goes into `plugin_components`, where any daemon on the database
/// finds it; an unmigrated database is refused saying what to run.
#[tokio::test]
async fn plugin_install_writes_drowls_plugins_table_in_postgres() {
    let db = TestDb::create().await;
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let url = db.url.clone();
    let run = move |args: Vec<String>| {
        let d = d.clone();
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                cli(
                    &[&args[..], &["--data-dir", "data"][..]].concat(),
                    &d,
                    Some(&url),
                )
            })
            .await
            .unwrap()
        }
    };
    let install = vec![
        "plugin".to_owned(),
        "install".to_owned(),
        p(&hostile).to_owned(),
        "--config".to_owned(),
        "token=${HOSTILE_TOKEN}".to_owned(),
    ];
    refused(
        &run(install.clone()).await,
        8,
        "run `drowl-host migrate` first",
    );
    let store = drowl_host::storage::postgres::PostgresStore::connect(&db.url)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let sha = ok(&run(install).await)["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let (version, manifest_id, config, enabled, installed_at, bytes): (
        String,
        String,
        Value,
        bool,
        Option<chrono::DateTime<chrono::Utc>>,
        Vec<u8>,
    ) = sqlx::query_as(
        "SELECT p.version, p.manifest->>'id', p.config, p.is_enabled, p.installed_at, c.bytes \
           FROM plugins p JOIN plugin_components c ON c.sha256 = p.component_sha256 \
          WHERE p.id = 'hostile'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        (version.as_str(), manifest_id.as_str()),
        ("0.2.0", "hostile")
    );
    assert_eq!(config, json!({"token": "${HOSTILE_TOKEN}"}));
    assert!(enabled && installed_at.is_some());
    assert_eq!(bytes, std::fs::read(&hostile).unwrap());
    assert_eq!(
        drowl_host::jobs::catalog::components::sha256_hex(&bytes),
        sha
    );
    let rows = ok(&run(vec!["plugin".into(), "list".into(), "--json".into()]).await);
    assert_eq!(rows[0]["id"], "hostile");
}

/// An executor and a catalog over embedded storage in `dir`, with the plugins directory
/// `dir/plugins.d` and `policy`, and a manager writing the same table.
async fn daemon_parts(dir: &Path, policy: HostPolicy) -> (Storage, Manager, Catalog, Executor) {
    let data = dir.join("data");
    std::fs::create_dir_all(dir.join("plugins.d")).unwrap();
    let storage = drowl_host::storage::open_embedded(&data).await.unwrap();
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(root().join("target/drowl-test-cache")),
        ..EngineSettings::default()
    })
    .unwrap();
    let manager = Manager::new(runtime.clone(), storage.plugins.clone(), &data);
    let catalog = Catalog::start(
        runtime.clone(),
        storage.clone(),
        CatalogSettings {
            plugins_dir: dir.join("plugins.d"),
            data_dir: data,
            policy,
            parallel_loads: 2,
        },
    )
    .await
    .unwrap();
    let exec = Executor::from_shared(runtime, storage.clone(), catalog.shared());
    (storage, manager, catalog, exec)
}

fn ingest(input: Value) -> drowl_host::jobs::JobRequest {
    job(
        &format!("j-{}", uuid::Uuid::new_v4().simple()),
        json!({"type": "event_ingestion", "name": "probe", "input": input}),
    )
}

/// The plugin a job ran on: its version, or the failure.
async fn ran_on(exec: &Executor, input: Value) -> Result<String, JobFailure> {
    exec.execute(&ingest(input), None)
        .await
        .map(|done| done.output["pluginVersion"].as_str().unwrap().to_owned())
        .map_err(|failed| failed.failure)
}

async fn last_error(storage: &Storage, id: &str) -> Option<String> {
    storage
        .plugins
        .plugin(id)
        .await
        .unwrap()
        .unwrap()
        .last_error
}

/// In process: what the CLI installs, enables, disables, reconfigures and upgrades
/// reaches the registry at the next poll; a job running across a swap finishes on the
/// build it started with; a disabled plugin's jobs fail saying so; a broken build gets
/// `last_error` and the working one keeps serving; a row drowl's API writes directly
/// (no component of the host's) runs the plugins directory's file; a file dropped in
/// the directory is picked up.
#[tokio::test]
async fn the_catalog_follows_the_table_and_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, manager, mut catalog, exec) =
        daemon_parts(dir.path(), HostPolicy::default()).await;
    let hostile = component("hostile-plugin");
    let config = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert!(exec.registry().ids().is_empty());
    let e = ran_on(&exec, json!({"pluginId": "hostile", "mode": "ok"}))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("plugin `hostile` is not installed"),
        "{e}"
    );

    // Installed: runs after the next poll, not before.
    manager
        .install(&hostile, None, &config(&[("label", "one")]), true)
        .await
        .unwrap();
    assert!(exec.registry().ids().is_empty());
    assert!(catalog.poll().await);
    assert_eq!(exec.registry().ids(), ["hostile"]);
    assert_eq!(
        ran_on(&exec, json!({"pluginId": "hostile", "mode": "ok"}))
            .await
            .unwrap(),
        "0.2.0"
    );
    assert!(!catalog.poll().await, "nothing changed");

    // drowl's API writes the table in SQL (the embedded database here is SQLite).
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("data/drowl.db").display()
    ))
    .await
    .unwrap();
    let sql = |q: &'static str, arg: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(q).bind(arg).execute(&pool).await.unwrap();
        }
    };

    // A config change is picked up without a new compile; the plugin sees the new value.
    let leak = json!({"pluginId": "hostile", "mode": "leak-config", "key": "label"});
    let before = ran_on(&exec, leak.clone()).await.unwrap_err().to_string();
    assert!(before.contains("failing with label one"), "{before}");
    sql(
        "UPDATE plugins SET config = ?1 WHERE id = 'hostile'",
        json!({"label": "two"}).to_string(),
    )
    .await;
    assert!(catalog.poll().await);
    let after = ran_on(&exec, leak).await.unwrap_err().to_string();
    assert!(after.contains("failing with label two"), "{after}");

    // A job running across an upgrade finishes on the build it started with; the next
    // job runs the new one.
    let slow = {
        let exec = exec.clone();
        tokio::spawn(async move {
            ran_on(
                &exec,
                json!({"pluginId": "hostile", "mode": "sleep", "ms": 1500}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    manager.upgrade("hostile", &next(), None).await.unwrap();
    assert!(catalog.poll().await);
    assert_eq!(
        ran_on(&exec, json!({"pluginId": "hostile", "mode": "ok"}))
            .await
            .unwrap(),
        "0.2.0+next"
    );
    assert_eq!(
        slow.await.unwrap().unwrap(),
        "0.2.0",
        "the running job kept its build"
    );

    // Disabled: new jobs fail as plugin-not-found saying so, and how to bring it back.
    manager.set_enabled("hostile", false).await.unwrap();
    assert!(catalog.poll().await);
    let e = ran_on(&exec, json!({"pluginId": "hostile-plugin", "mode": "ok"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "plugin-not-found");
    assert!(
        e.to_string().contains("plugin `hostile-plugin` is disabled in the plugins table (is_enabled = false); enable it with `drowl-host plugin enable hostile`"),
        "{e}"
    );
    manager.set_enabled("hostile", true).await.unwrap();
    assert!(catalog.poll().await);
    assert_eq!(
        ran_on(&exec, json!({"pluginId": "hostile", "mode": "ok"}))
            .await
            .unwrap(),
        "0.2.0+next"
    );

    // A broken build in the table (drowl's API pointing the row at another plugin's
    // component): `last_error` says why, and the working build keeps serving.
    let keywords = std::fs::read(component("keywords-plugin")).unwrap();
    let ksha = drowl_host::jobs::catalog::components::sha256_hex(&keywords);
    storage
        .plugins
        .put_component(&ksha, &keywords)
        .await
        .unwrap();
    sql(
        "UPDATE plugins SET component_sha256 = ?1 WHERE id = 'hostile'",
        ksha.clone(),
    )
    .await;
    catalog.poll().await;
    let err = last_error(&storage, "hostile").await.expect("last_error");
    assert!(
        err.contains(&format!("its component {ksha} declares plugin `keywords`"))
            && err.contains("keeps running version 0.2.0+next"),
        "{err}"
    );
    assert_eq!(
        ran_on(&exec, json!({"pluginId": "hostile", "mode": "ok"}))
            .await
            .unwrap(),
        "0.2.0+next"
    );
    assert!(
        !catalog.poll().await,
        "a failed load is not retried until its row changes"
    );
    // Fixed: loads, and the error is cleared.
    manager.upgrade("hostile", &hostile, None).await.unwrap();
    assert!(catalog.poll().await);
    assert_eq!(last_error(&storage, "hostile").await, None);
    assert_eq!(
        ran_on(&exec, json!({"pluginId": "hostile", "mode": "ok"}))
            .await
            .unwrap(),
        "0.2.0"
    );
    // A config reading a variable the daemon's environment lacks: reported, naming it;
    // the build loaded before keeps its config.
    manager
        .upgrade(
            "hostile",
            &hostile,
            Some(&config(&[("token", "${DROWL_TEST_SURELY_UNSET}")])),
        )
        .await
        .unwrap();
    catalog.poll().await;
    let err = last_error(&storage, "hostile")
        .await
        .expect("unset variable");
    assert!(
        err.contains("environment variable DROWL_TEST_SURELY_UNSET, which is not set"),
        "{err}"
    );
    manager
        .upgrade("hostile", &hostile, Some(&config(&[("label", "three")])))
        .await
        .unwrap();
    assert!(catalog.poll().await);
    assert_eq!(last_error(&storage, "hostile").await, None);

    // A row drowl's API writes with no component of the host's: its component is the
    // plugins directory's file of its id; without one, `last_error` says what to do.
    let insert = |id: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO plugins (id, name, version, is_enabled, is_installed) \
                 VALUES (?1, ?1, '0.0.0', 1, 1)",
            )
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    insert("keywords").await;
    catalog.poll().await;
    let err = last_error(&storage, "keywords")
        .await
        .expect("no component");
    assert!(
        err.contains("it has no component") && err.contains("keywords.wasm"),
        "{err}"
    );
    // Its file dropped into the plugins directory: picked up at the next poll, under the
    // row's say (enabled), and the error cleared.
    std::fs::copy(
        component("keywords-plugin"),
        dir.path().join("plugins.d/keywords.wasm"),
    )
    .unwrap();
    assert!(catalog.poll().await);
    assert_eq!(exec.registry().ids(), ["hostile", "keywords"]);
    assert_eq!(last_error(&storage, "keywords").await, None);
    // The API disables it in SQL: the directory's file no longer runs either.
    sqlx::query("UPDATE plugins SET is_enabled = 0 WHERE id = 'keywords'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(catalog.poll().await);
    assert_eq!(exec.registry().ids(), ["hostile"]);

    // A directory file with no row runs as it always has; deleting it stops it.
    let gh = component("feed-plugin");
    std::fs::copy(&gh, dir.path().join("plugins.d/feed.wasm")).unwrap();
    assert!(catalog.poll().await);
    assert_eq!(exec.registry().ids(), ["feed", "hostile"]);
    std::fs::remove_file(dir.path().join("plugins.d/feed.wasm")).unwrap();
    assert!(catalog.poll().await);
    assert_eq!(exec.registry().ids(), ["hostile"]);

    // A row whose directory file declares another id: reported, the file named.
    insert("other").await;
    std::fs::copy(&hostile, dir.path().join("plugins.d/other.wasm")).unwrap();
    catalog.poll().await;
    let err = last_error(&storage, "other").await.expect("error");
    assert!(
        err.contains("other.wasm is installed as `other`")
            && err.contains("but its manifest declares `hostile`"),
        "{err}"
    );
    let e = ran_on(&exec, json!({"pluginId": "other", "mode": "ok"}))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("plugin `other` failed to load: "),
        "{e}"
    );
}
