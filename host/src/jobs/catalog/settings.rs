//! A row's `config`: stored as written, checked when installed, read by the daemon.
//!
//! A value that is exactly `${VAR}` is a reference: it is stored as written and read from
//! the daemon's environment each time the plugin is loaded, so a secret never reaches the
//! table; `plugin install` refuses a manifest `secret` field given any other way. The
//! rule is `plugins.json`'s (see `crate::config::expand_env`): anything else, `$` signs
//! included, is taken literally.

use std::collections::{BTreeMap, BTreeSet};

use crate::capabilities::{ConfigError, ResolvedConfig};
use crate::jobs::webhook::WEBHOOK_SECRET_KEY;
use crate::manifest::{FieldType, Manifest};
use crate::policy::PluginSettings;

/// The variable a value names when it is exactly `${VAR}`.
pub fn env_reference(v: &str) -> Option<&str> {
    v.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .filter(|var| !var.is_empty())
}

/// The `config` column for `values`: a JSON object of strings.
pub fn to_json(values: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// The `config` column as key-value pairs. drowl's API writes JSON values of any type:
/// strings are taken as they are, numbers and booleans as their text, arrays and objects
/// as their JSON text (what a `json` field expects), and `null` as unset.
pub fn from_json(config: &serde_json::Value) -> Result<BTreeMap<String, String>, String> {
    let object = match config {
        serde_json::Value::Object(o) => o,
        serde_json::Value::Null => return Ok(BTreeMap::new()),
        other => return Err(format!("its config is not a JSON object: {other}")),
    };
    Ok(object
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((k.clone(), text))
        })
        .collect())
}

/// Checks config values an operator is about to record for `manifest`: every key
/// declared, `secret` fields only as `${VAR}`, values that fit their types, required
/// fields set. A reference to a variable unset here is not checked further: the daemon
/// reads it from its own environment. A plugin that `receives_webhooks` also takes the
/// host's `webhook-secret`, declared or not, and only as a reference too.
pub fn check(
    manifest: &Manifest,
    receives_webhooks: bool,
    values: &BTreeMap<String, String>,
) -> Result<(), String> {
    let mut resolvable = BTreeMap::new();
    let mut unresolved = BTreeSet::new();
    for (key, value) in values {
        let host_secret = receives_webhooks && key == WEBHOOK_SECRET_KEY;
        let secret = host_secret
            || manifest
                .field(key)
                .is_some_and(|f| f.field_type == FieldType::Secret);
        if host_secret && manifest.field(key).is_none() {
            // Not the plugin's to validate: only its form is checked.
            if env_reference(value).is_some() {
                continue;
            }
        }
        match env_reference(value) {
            Some(var) => match std::env::var(var) {
                Ok(v) => {
                    resolvable.insert(key.clone(), v);
                }
                Err(_) => {
                    unresolved.insert(key.clone());
                }
            },
            None if secret => {
                return Err(format!(
                    "config key `{key}` is a secret of plugin `{}`; write it as a reference, e.g. --config '{key}=${{{}}}', so the daemon reads it from its environment and it is never stored",
                    manifest.id,
                    suggested_var(&manifest.id, key)
                ));
            }
            None => {
                resolvable.insert(key.clone(), value.clone());
            }
        }
    }
    // Unknown keys are refused whether or not they resolve.
    if let Some(key) = unresolved.iter().find(|k| manifest.field(k).is_none()) {
        resolvable.insert(key.clone(), String::new());
    }
    match ResolvedConfig::resolve(manifest, &resolvable) {
        Ok(_) => Ok(()),
        Err(ConfigError::Missing { key, .. }) if unresolved.contains(&key) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// `GITHUB_TOKEN` for key `token` of plugin `github`.
fn suggested_var(id: &str, key: &str) -> String {
    format!("{id}_{key}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The settings a row's plugin runs with: the operator's `plugins.json` entry for the id
/// (grants, sources, platforms, follow-ups, secret keys; only the operator grants those,
/// never the table, which drowl's API writes) with the row's config over its config.
/// References are read from the environment now and their values are secrets.
pub fn row_settings(
    base: Option<&PluginSettings>,
    values: &BTreeMap<String, String>,
) -> Result<PluginSettings, String> {
    let mut settings = base.cloned().unwrap_or_default();
    for (key, value) in values {
        let value = match env_reference(value) {
            Some(var) => {
                let v = std::env::var(var).map_err(|_| {
                    format!(
                        "config key `{key}` reads environment variable {var}, which is not set in the daemon's environment"
                    )
                })?;
                settings.secret_keys.insert(key.clone());
                v
            }
            None => {
                // The operator's file may have marked a key secret for a value it held.
                value.clone()
            }
        };
        settings.config.insert(key.clone(), value);
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::manifest::{ConfigField, FieldType};

    fn manifest() -> Manifest {
        let field = |key: &str, t, required| ConfigField {
            key: key.into(),
            label: key.into(),
            field_type: t,
            description: String::new(),
            required,
            default: None,
        };
        let mut m: Manifest = serde_json::from_value(json!({
            "id": "github", "name": "GitHub", "version": "1.0.0", "description": "",
            "author": {"name": "drowl"}, "capabilities": ["event_ingestion"],
            "sources": ["github"], "config": [], "outboundHosts": [],
            "minHostVersion": "0.1.0", "resources": {}
        }))
        .expect("manifest");
        m.config = vec![
            field("token", FieldType::Secret, false),
            field("per-page", FieldType::Number, false),
            field("user", FieldType::String, true),
        ];
        m
    }

    fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn secrets_must_be_references_and_values_fit_the_manifest() {
        let m = manifest();
        check(&m, false, &kv(&[("user", "octocat"), ("token", "${PATH}")])).unwrap();
        // A reference to a variable unset here is the daemon's business, required or not.
        check(
            &m,
            false,
            &kv(&[("user", "${DROWL_TEST_SURELY_UNSET_VAR}")]),
        )
        .unwrap();
        // The host's webhook secret, for a plugin that receives webhooks: a reference.
        let hook = kv(&[("user", "o"), ("webhook-secret", "${HOOK_SECRET}")]);
        check(&m, true, &hook).unwrap();
        assert!(
            check(&m, false, &hook)
                .unwrap_err()
                .contains("not declared")
        );
        let plain = kv(&[("user", "o"), ("webhook-secret", "shh")]);
        let e = check(&m, true, &plain).unwrap_err();
        assert!(e.contains("write it as a reference"), "{e}");
        for (given, needle) in [
            (
                kv(&[("user", "o"), ("token", "ghp_plain")]),
                "write it as a reference, e.g. --config 'token=${GITHUB_TOKEN}'",
            ),
            (
                kv(&[("user", "o"), ("colour", "red")]),
                "`colour` is not declared",
            ),
            (
                kv(&[("user", "o"), ("colour", "${DROWL_TEST_SURELY_UNSET_VAR}")]),
                "`colour` is not declared",
            ),
            (
                kv(&[("user", "o"), ("per-page", "many")]),
                "`per-page` must be",
            ),
            (kv(&[]), "`user` is required"),
        ] {
            let e = check(&m, false, &given).unwrap_err();
            assert!(e.contains(needle), "{given:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn the_config_column_reads_as_drowls_api_writes_it() {
        let c = from_json(&json!({"user": "o", "per-page": 50, "on": true, "x": null,
                                  "tags": ["a"]}))
        .unwrap();
        assert_eq!(
            c,
            kv(&[
                ("user", "o"),
                ("per-page", "50"),
                ("on", "true"),
                ("tags", "[\"a\"]")
            ])
        );
        assert_eq!(from_json(&serde_json::Value::Null).unwrap(), kv(&[]));
        assert!(
            from_json(&json!([1]))
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert_eq!(
            to_json(&kv(&[("token", "${T}")])),
            json!({"token": "${T}"}),
            "references are stored as written"
        );
    }

    #[test]
    fn a_rows_settings_read_references_now_and_keep_the_operators_grants() {
        let base = PluginSettings {
            config: kv(&[("user", "file"), ("per-page", "10")]),
            grants: vec!["https://api.github.com".into()],
            ..PluginSettings::default()
        };
        let s = row_settings(Some(&base), &kv(&[("user", "row"), ("token", "${PATH}")])).unwrap();
        assert_eq!(s.config["user"], "row");
        assert_eq!(s.config["per-page"], "10");
        assert_eq!(s.config["token"], std::env::var("PATH").unwrap());
        assert!(s.secret_keys.contains("token") && !s.secret_keys.contains("user"));
        assert_eq!(s.grants, base.grants);
        let e =
            row_settings(None, &kv(&[("token", "${DROWL_TEST_SURELY_UNSET_VAR}")])).unwrap_err();
        assert!(e.contains("DROWL_TEST_SURELY_UNSET_VAR"), "{e}");
    }
}
