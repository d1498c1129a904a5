//! Per-plugin settings from either file: `[plugins.<id>]` of the TOML settings file, or
//! the JSON plugin config file operators already use (`serve --plugin-config`,
//! `{"github": {"config": {...}, "allowHosts": [...]}}`). Both become the same
//! [`PluginSettings`], checked the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::file::PluginSection;
use super::problem::{Place, Problem};
use super::{env_reference, expand_env};
use crate::policy::{FollowUpGrant, PluginSettings};

/// One plugin's settings and what `config check` needs to show them without secrets.
#[derive(Debug, Clone)]
pub struct ConfiguredPlugin {
    /// The settings the daemon uses.
    pub settings: PluginSettings,
    /// The file they were read from.
    pub from: PathBuf,
    /// Config keys read from the environment, with the variable (`token` → `GITHUB_TOKEN`).
    pub env_refs: BTreeMap<String, String>,
}

/// One entry of the JSON plugin config file, as written (camelCase, as drowl's own files).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonEntry {
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    allow_hosts: Vec<String>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    platforms: Vec<String>,
    /// Follow-up jobs for other plugins this plugin may enqueue, as `TYPE:PLUGIN`.
    #[serde(default)]
    follow_ups: Vec<String>,
    /// Config keys whose values are redacted whatever the manifest calls them.
    #[serde(default)]
    secrets: Vec<String>,
    /// The file in the plugins directory installed as this id.
    #[serde(default)]
    file: Option<String>,
    /// The SHA-256 that file must have.
    #[serde(default)]
    sha256: Option<String>,
}

/// What either file says for one plugin, before it is checked.
struct Raw {
    config: BTreeMap<String, String>,
    secrets: Vec<String>,
    hosts: Vec<String>,
    sources: Vec<String>,
    platforms: Vec<String>,
    follow_ups: Vec<String>,
    file: Option<String>,
    sha256: Option<String>,
}

/// Names the keys of one plugin's entry in problems: `plugins.github` in the TOML file,
/// `github` in the JSON one, and the JSON file's own names for its keys.
struct Keys<'a> {
    path: &'a Path,
    prefix: String,
    json: bool,
}

impl Keys<'_> {
    fn key(&self, toml_key: &str) -> String {
        let key = match (self.json, toml_key) {
            (true, "grants.hosts") => "allowHosts",
            (true, "grants.follow_ups") => "followUps",
            (true, k) => k.strip_prefix("grants.").unwrap_or(k),
            (false, k) => k,
        };
        format!("{}.{key}", self.prefix)
    }

    fn problem(&self, key: &str, message: impl Into<String>) -> Problem {
        Problem::file(self.path, self.key(key), message)
    }
}

/// Checks one plugin's entry; every problem is pushed, none stops the others.
fn configure(raw: Raw, keys: &Keys<'_>, problems: &mut Vec<Problem>) -> ConfiguredPlugin {
    let mut config = BTreeMap::new();
    let mut env_refs = BTreeMap::new();
    for (k, v) in raw.config {
        // Whatever comes from the environment is treated as a secret.
        if let Some(var) = env_reference(&v) {
            env_refs.insert(k.clone(), var.to_owned());
        }
        match expand_env(&v) {
            Ok(v) => {
                config.insert(k, v);
            }
            Err(e) => problems.push(keys.problem(&format!("config.{k}"), e)),
        }
    }
    let mut secret_keys: BTreeSet<String> = env_refs.keys().cloned().collect();
    for k in raw.secrets {
        if !config.contains_key(&k) && !env_refs.contains_key(&k) {
            problems.push(keys.problem(
                "secrets",
                format!("lists `{k}`, but the plugin's config sets no `{k}`"),
            ));
        }
        secret_keys.insert(k);
    }
    let mut follow_ups = Vec::new();
    for g in &raw.follow_ups {
        match g.parse::<FollowUpGrant>() {
            Ok(g) => follow_ups.push(g),
            Err(e) => problems.push(keys.problem("grants.follow_ups", e)),
        }
    }
    ConfiguredPlugin {
        settings: PluginSettings {
            config,
            secret_keys,
            grants: raw.hosts,
            sources: raw.sources,
            platforms: raw.platforms,
            follow_ups,
            file: raw.file,
            sha256: raw.sha256,
        },
        from: keys.path.to_path_buf(),
        env_refs,
    }
}

/// The `[plugins.<id>]` tables of the TOML file at `path`.
pub fn from_file(
    sections: &BTreeMap<String, PluginSection>,
    path: &Path,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, ConfiguredPlugin> {
    let mut out = BTreeMap::new();
    for (id, section) in sections {
        let keys = Keys {
            path,
            prefix: format!("plugins.{id}"),
            json: false,
        };
        let mut config = BTreeMap::new();
        for (k, v) in &section.config {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(_)
                | toml::Value::Float(_)
                | toml::Value::Boolean(_)
                | toml::Value::Datetime(_) => v.to_string(),
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    problems.push(keys.problem(
                        &format!("config.{k}"),
                        "must be a string, a number or a boolean (a list is one string, \
                         as the plugin declares it, e.g. \"a, b\")",
                    ));
                    continue;
                }
            };
            config.insert(k.clone(), text);
        }
        let g = &section.grants;
        let raw = Raw {
            config,
            secrets: section.secrets.clone(),
            hosts: g.hosts.clone(),
            sources: g.sources.clone(),
            platforms: g.platforms.clone(),
            follow_ups: g.follow_ups.clone(),
            file: section.file.clone(),
            sha256: section.sha256.clone(),
        };
        out.insert(id.clone(), configure(raw, &keys, problems));
    }
    out
}

/// Reads the JSON plugin config file at `path` (`--plugin-config`).
pub fn from_json_file(
    path: &Path,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, ConfiguredPlugin> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::file(
                path,
                "",
                format!("cannot read the plugin config file: {e}"),
            ));
            return BTreeMap::new();
        }
    };
    let mut de = serde_json::Deserializer::from_str(&text);
    let entries: BTreeMap<String, JsonEntry> = match serde_path_to_error::deserialize(&mut de) {
        Ok(e) => e,
        Err(e) => {
            let key = e.path().to_string();
            problems.push(Problem {
                place: Place::File {
                    path: path.to_path_buf(),
                    key: if key == "." { String::new() } else { key },
                    line: Some(e.inner().line()),
                },
                message: super::file::plain_message(&strip_position(&e.inner().to_string())),
            });
            return BTreeMap::new();
        }
    };
    let mut out = BTreeMap::new();
    for (id, entry) in entries {
        let keys = Keys {
            path,
            prefix: id.clone(),
            json: true,
        };
        let raw = Raw {
            config: entry.config,
            secrets: entry.secrets,
            hosts: entry.allow_hosts,
            sources: entry.sources,
            platforms: entry.platforms,
            follow_ups: entry.follow_ups,
            file: entry.file,
            sha256: entry.sha256,
        };
        out.insert(id, configure(raw, &keys, problems));
    }
    out
}

/// serde_json's message without its ` at line L column C` (the line is reported apart).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(value: serde_json::Value) -> (BTreeMap<String, ConfiguredPlugin>, Vec<String>) {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), value.to_string()).expect("write");
        let mut problems = Vec::new();
        let out = from_json_file(f.path(), &mut problems);
        let shown = problems
            .iter()
            .map(|p| {
                p.to_string()
                    .replace(&f.path().display().to_string(), "plugins.json")
            })
            .collect();
        (out, shown)
    }

    /// Values from the environment and keys listed under `secrets` are the plugin's
    /// secrets whatever its manifest says; `file` and `sha256` pin its file.
    #[test]
    fn plugin_config_marks_environment_values_and_listed_keys_secret() {
        let (p, problems) = json(serde_json::json!({"github": {
            "config": {"token": "${PATH}", "user": "octocat", "org": "drowl"},
            "secrets": ["org"], "file": "gh.wasm", "sha256": "ab"
        }}));
        assert_eq!(problems, Vec::<String>::new());
        let g = &p["github"].settings;
        assert_eq!(g.config["token"], std::env::var("PATH").expect("PATH"));
        assert_eq!(
            g.secret_keys.iter().map(String::as_str).collect::<Vec<_>>(),
            ["org", "token"]
        );
        assert_eq!(
            g.secret_values().collect::<BTreeSet<_>>(),
            BTreeSet::from(["drowl", g.config["token"].as_str()])
        );
        assert_eq!(
            (g.file.as_deref(), g.sha256.as_deref()),
            (Some("gh.wasm"), Some("ab"))
        );
        assert_eq!(p["github"].env_refs["token"], "PATH");
        let (_, problems) =
            json(serde_json::json!({"github": {"config": {}, "secrets": ["token"]}}));
        assert_eq!(
            problems,
            [
                "plugins.json: github.secrets: lists `token`, but the plugin's config sets no `token`"
            ]
        );
    }

    #[test]
    fn the_plugin_config_file_grants_sources_and_platforms() {
        let (settings, problems) = json(serde_json::json!(
            {"github": {"sources": ["github"], "platforms": ["x"]}, "hostile": {}}
        ));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings["github"].settings.sources, ["github"]);
        assert_eq!(settings["github"].settings.platforms, ["x"]);
        assert!(settings["hostile"].settings.sources.is_empty());
        let (_, problems) = json(serde_json::json!({"github": {"source": ["github"]}}));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with(
                "plugins.json:1: github.source: unknown key; known keys: config, allowHosts,"
            ),
            "{problems:?}"
        );
    }

    /// In the TOML file: numbers and booleans are config values too, an unset variable
    /// and a bad grant are named by key, and every problem of the table is reported.
    #[test]
    fn toml_entries_are_checked_key_by_key() {
        let file: crate::config::file::ConfigFile = toml::from_str(
            r#"
[plugins.feed]
config = { per_page = 50, strict = true, token = "${DROWL_TEST_SURELY_UNSET_VARIABLE}", tags = ["a"] }
secrets = ["password"]
grants = { hosts = ["https://zenn.dev"], follow_ups = ["nocolon"] }
"#,
        )
        .expect("parses");
        let mut problems = Vec::new();
        let out = from_file(&file.plugins, Path::new("drowl.toml"), &mut problems);
        let feed = &out["feed"].settings;
        assert_eq!(feed.config["per_page"], "50");
        assert_eq!(feed.config["strict"], "true");
        assert_eq!(feed.grants, ["https://zenn.dev"]);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "drowl.toml: plugins.feed.config.tags: must be a string, a number or a boolean (a list is one string, as the plugin declares it, e.g. \"a, b\")",
                "drowl.toml: plugins.feed.config.token: environment variable DROWL_TEST_SURELY_UNSET_VARIABLE is not set",
                "drowl.toml: plugins.feed.secrets: lists `password`, but the plugin's config sets no `password`",
                "drowl.toml: plugins.feed.grants.follow_ups: follow-up grant \"nocolon\" must look like TYPE:PLUGIN, e.g. keyword_extraction:keywords (`*` for any)",
            ]
        );
    }
}
