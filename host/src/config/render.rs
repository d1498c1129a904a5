//! The effective settings as `drowl-host config check` prints them: as TOML that is itself
//! a valid settings file (each value followed by a comment saying where it came from), or
//! as JSON for scripts. Values arrive here already masked ([`super::settings`]).

use std::fmt::Write as _;

use super::settings::{Entry, Source};

/// Whether an entry is one of drowl's environment variables rather than a file key.
fn is_environment(key: &str) -> bool {
    key.chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A key as TOML writes it: bare when it can be, quoted otherwise.
fn key_part(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        toml::Value::String(k.to_owned()).to_string()
    }
}

fn sources(s: &[Source]) -> String {
    s.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The entries as a TOML settings file with comments; `file` is the settings file read.
pub fn toml(entries: &[Entry], file: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# drowl-host config check: the settings are valid.");
    let _ = writeln!(
        out,
        "# Settings file: {}",
        file.map_or_else(|| "none".to_owned(), |f| f.display().to_string())
    );
    let _ = writeln!(
        out,
        "# Each setting is followed by where its value came from: default, file, env or flag.\n\
         # Secrets are masked (\"***\", or the ${{VAR}} they are read from)."
    );
    // Top-level keys first: TOML puts everything after a [table] header in that table.
    let mut tables: Vec<(String, Vec<&Entry>)> = vec![(String::new(), Vec::new())];
    for e in entries.iter().filter(|e| !is_environment(&e.key)) {
        let (table, _) = e.key.rsplit_once('.').unwrap_or(("", &e.key));
        match tables.iter_mut().find(|(t, _)| t == table) {
            Some((_, list)) => list.push(e),
            None => tables.push((table.to_owned(), vec![e])),
        }
    }
    for (table, list) in &tables {
        if !table.is_empty() {
            let header: Vec<String> = table.split('.').map(key_part).collect();
            let _ = writeln!(out, "\n[{}]", header.join("."));
        }
        for e in list {
            let leaf = e.key.rsplit_once('.').map_or(e.key.as_str(), |(_, l)| l);
            match &e.value {
                Some(v) => {
                    let _ = writeln!(out, "{} = {v}  # {}", key_part(leaf), sources(&e.sources));
                }
                None => {
                    let _ = writeln!(out, "# {} unset  # {}", key_part(leaf), sources(&e.sources));
                }
            }
        }
    }
    let _ = writeln!(out, "\n# drowl's environment (never read from the file):");
    for e in entries.iter().filter(|e| is_environment(&e.key)) {
        match &e.value {
            Some(v) => {
                let _ = writeln!(out, "# {} = {v}  # {}", e.key, sources(&e.sources));
            }
            None => {
                let _ = writeln!(out, "# {} unset", e.key);
            }
        }
    }
    out
}

/// The entries as JSON: `{"file", "settings": {key: {"value", "source", "from"}}}`, where
/// `source` is `default`, `file`, `env` or `flag` (joined with `+` for lists that add up)
/// and `from` the file, variable or flag.
pub fn json(entries: &[Entry], file: Option<&std::path::Path>) -> serde_json::Value {
    let settings: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|e| {
            let kinds: Vec<&str> = e.sources.iter().map(Source::kind).collect();
            let from: Vec<String> = e.sources.iter().filter_map(Source::origin).collect();
            let mut v = serde_json::json!({
                "value": e.value.clone().map(super::settings::toml_to_json),
                "source": kinds.join("+"),
            });
            if !from.is_empty() {
                v["from"] = from.join(", ").into();
            }
            (e.key.clone(), v)
        })
        .collect();
    serde_json::json!({
        "valid": true,
        "file": file.map(|f| f.display().to_string()),
        "settings": settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(key: &str, value: Option<toml::Value>, source: Source) -> Entry {
        Entry {
            key: key.to_owned(),
            value,
            sources: vec![source],
        }
    }

    /// The TOML output groups keys under their tables, top-level keys first, and parses
    /// back as TOML with the same values.
    #[test]
    fn toml_output_is_a_settings_file_with_sources() {
        let file = Source::File(PathBuf::from("drowl.toml"));
        let entries = vec![
            entry("queue.name", Some("jobs".into()), file.clone()),
            entry("data_dir", Some(".drowl".into()), Source::Default),
            entry(
                "plugins.my-plugin.config",
                Some(toml::Value::Table(toml::Table::from_iter([(
                    "token".to_owned(),
                    toml::Value::String("${T}".into()),
                )]))),
                file,
            ),
            entry("budgets.fuel", None, Source::Default),
            entry(
                "queue.concurrency",
                Some(8.into()),
                Source::Flag("--concurrency".into()),
            ),
            entry(
                "REDIS_URL",
                Some("redis://:***@h".into()),
                Source::Env("REDIS_URL".into()),
            ),
        ];
        let text = toml(&entries, Some(std::path::Path::new("drowl.toml")));
        assert!(
            text.contains("data_dir = \".drowl\"  # default\n"),
            "{text}"
        );
        assert!(
            text.contains("[queue]\nname = \"jobs\"  # file drowl.toml\nconcurrency = 8  # flag --concurrency\n"),
            "{text}"
        );
        assert!(
            text.contains("[plugins.my-plugin]\nconfig = { token = \"${T}\" }"),
            "{text}"
        );
        assert!(text.contains("# fuel unset  # default"), "{text}");
        assert!(
            text.contains("# REDIS_URL = \"redis://:***@h\"  # env REDIS_URL"),
            "{text}"
        );
        let back: toml::Table = text.parse().expect("the output is TOML");
        assert_eq!(back["queue"]["concurrency"].as_integer(), Some(8));
        assert!(text.find("data_dir").unwrap() < text.find("[queue]").unwrap());

        let j = json(&entries, None);
        assert_eq!(j["settings"]["queue.concurrency"]["value"], 8);
        assert_eq!(j["settings"]["queue.concurrency"]["source"], "flag");
        assert_eq!(j["settings"]["queue.concurrency"]["from"], "--concurrency");
        assert_eq!(
            j["settings"]["budgets.fuel"]["value"],
            serde_json::Value::Null
        );
        assert!(j["settings"]["data_dir"].get("from").is_none());
    }
}
