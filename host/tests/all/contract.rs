//! Released WIT is frozen byte for byte: a plugin built against `drowl:plugin@0.1.0`
//! must keep loading and running on every later host, so a new capability goes into a
//! new contract version (`wit/v0.2.0/`), never into a released one.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Every file of each released contract version, with its SHA-256 as released.
const RELEASED: &[(&str, &[(&str, &str)])] = &[(
    "v0.1.0",
    &[
        (
            "host.wit",
            "28741f8dc59887ebb9b679dfcd8f69c1eaba0d62c5efc89a26e71255c2efff0f",
        ),
        (
            "roles.wit",
            "477e42b257e25b2ff23bea00965f73f1353c7ddd7809aa9e77f3c820c4d86c3f",
        ),
        (
            "types.wit",
            "c9a5313476277b549d3939050915140405f16e10fb235f0dafd0d5a885edb527",
        ),
        (
            "worlds.wit",
            "c516a7de49d777702661d13ff22b0fad69a3193e667514ff78f7c77c179adddd",
        ),
    ],
)];

#[test]
fn released_wit_is_frozen_byte_for_byte() {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    for (version, files) in RELEASED {
        let dir = wit.join(version);
        let found: BTreeMap<String, String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.expect("directory entry").path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let bytes = std::fs::read(&path).expect("read a WIT file");
                (name, hex::encode(Sha256::digest(&bytes)))
            })
            .collect();
        let released: BTreeMap<String, String> = files
            .iter()
            .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
            .collect();
        for (name, digest) in &released {
            match found.get(name) {
                None => panic!(
                    "wit/{version}/{name} was removed: released WIT is frozen; \
                     restore it and put changes in a new contract version"
                ),
                Some(d) => assert_eq!(
                    d, digest,
                    "wit/{version}/{name} changed: released WIT is frozen byte for byte; \
                     restore it and put the new capability in a new contract version"
                ),
            }
        }
        let added: Vec<&String> = found
            .keys()
            .filter(|n| !released.contains_key(*n))
            .collect();
        assert!(
            added.is_empty(),
            "files added to the released wit/{version}: {added:?}; a new contract version \
             goes into a directory of its own"
        );
    }
}

/// `plugin check` prints the contract each component needs: the 0.1.0 fixtures and a
/// 0.1.0-role plugin built with the 0.2.0 SDK need 0.1.0 (0.2.0 reuses its interfaces),
/// the identity plugin needs 0.2.0 and imports its `directory`.
#[test]
fn plugin_check_prints_the_contract_each_component_needs() {
    use crate::support::*;
    let dir = tempfile::tempdir().unwrap();
    for (path, world, version) in [
        (
            contract_0_1_0_fixture("github_plugin.wasm"),
            "ingestion-plugin",
            "0.1.0",
        ),
        (
            contract_0_1_0_fixture("keywords_plugin.wasm"),
            "enrichment-plugin",
            "0.1.0",
        ),
        (component("keywords-plugin"), "enrichment-plugin", "0.1.0"),
        (component("identity-plugin"), "identity-plugin", "0.2.0"),
        (component("github-plugin"), "connector-plugin", "0.2.0"),
        (component("feed-plugin"), "scheduled-plugin", "0.2.0"),
    ] {
        let out = drowl_host(&["plugin", "check", path.to_str().unwrap()], dir.path());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let json = stdout_json(&out);
        assert_eq!(json["world"], world, "{}", path.display());
        assert_eq!(json["witVersion"], version, "{}", path.display());
        if world == "connector-plugin" {
            assert_eq!(
                json["manifest"]["webhook"],
                serde_json::json!({"verification": {"kind": "githubSignature"},
                                   "deliveryIdHeader": "x-github-delivery",
                                   "eventHeader": "x-github-event"}),
                "the manifest declares how deliveries are verified"
            );
        }
        if world != "identity-plugin" && version == "0.2.0" {
            let suggested = &json["manifest"]["defaultSchedules"];
            assert!(
                suggested[0]["cron"].is_string() && suggested[0]["jobType"] == "event_ingestion",
                "{suggested}"
            );
        }
        if world == "identity-plugin" {
            let imports = json["imports"].as_array().unwrap();
            assert!(
                imports.iter().any(|i| i == "drowl:plugin/directory@0.2.0"),
                "{imports:?}"
            );
            assert!(
                imports.iter().any(|i| i == "drowl:plugin/log@0.1.0"),
                "0.2.0 reuses the 0.1.0 host interfaces: {imports:?}"
            );
        }
    }
}

/// `directory` is only for identity plugins: a component of another role that imports
/// it is refused at load, naming the import and the role.
#[test]
fn only_identity_plugins_may_import_the_directory() {
    use crate::support::*;
    let dir = tempfile::tempdir().unwrap();
    let wat = r#"(component
      (import "drowl:plugin/directory@0.2.0" (instance))
      (instance $ingestion)
      (export "drowl:plugin/ingestion@0.1.0" (instance $ingestion))
    )"#;
    std::fs::write(dir.path().join("d.wasm"), wat::parse_str(wat).unwrap()).unwrap();
    let out = drowl_host(&["plugin", "check", "d.wasm"], dir.path());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("imports `drowl:plugin/directory@0.2.0`")
            && err.contains("ingestion-plugin world"),
        "{err}"
    );
}
