//! Object keys, built only by the host.
//!
//! S3 keys are arbitrary UTF-8 up to 1,024 bytes, `../` included, so a key that a plugin
//! could influence freely could land anywhere in the bucket. Here every key has the shape
//! `plugins/<plugin-id>/<area>/<validated relative path>`: the plugin id comes from a
//! validated manifest and each relative segment is checked against a small alphabet, so
//! no input can escape the plugin's prefix or collide with another plugin's objects.

use std::fmt;

use crate::ids::{BadPluginId, validate_plugin_id};

/// The longest relative key a plugin may use, in bytes. With the prefix the full key
/// stays well under S3's 1,024-byte limit.
pub const MAX_RELATIVE_KEY_LEN: usize = 512;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is empty.
    #[error("object key is empty")]
    Empty,
    /// The key is longer than [`MAX_RELATIVE_KEY_LEN`].
    #[error("object key is {0} bytes; the limit is {MAX_RELATIVE_KEY_LEN}")]
    TooLong(usize),
    /// A segment is empty, `.` or `..` (covers absolute paths and `a//b`).
    #[error(
        "object key {0:?} has an empty, `.` or `..` segment; use a relative path like `cache/page-1.json`"
    )]
    BadSegment(String),
    /// A character outside `[A-Za-z0-9._-]` and `/`.
    #[error(
        "object key {key:?} contains {ch:?}; keys may only use letters, digits, `.`, `_`, `-` and `/`"
    )]
    BadChar {
        /// The key as given.
        key: String,
        /// The first character refused.
        ch: char,
    },
    /// A plugin id that is not kebab-case.
    #[error(transparent)]
    BadPluginId(#[from] BadPluginId),
}

/// Checks a relative key a plugin supplied.
pub fn validate_relative_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_RELATIVE_KEY_LEN {
        return Err(KeyError::TooLong(key.len()));
    }
    if let Some(ch) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(KeyError::BadChar {
            key: key.to_owned(),
            ch,
        });
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(KeyError::BadSegment(key.to_owned()));
    }
    Ok(())
}

/// A full object key inside the operator's bucket or data directory.
///
/// It can only be built through the constructors below, each of which validates what it
/// is given, so holding an `ObjectKey` means holding a safe key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// A key a plugin chose through the `objects` import: `plugins/<id>/objects/<key>`.
    pub fn plugin_object(plugin_id: &str, relative: &str) -> Result<Self, KeyError> {
        validate_plugin_id(plugin_id)?;
        validate_relative_key(relative)?;
        Ok(Self(format!("plugins/{plugin_id}/objects/{relative}")))
    }

    /// The prefix of every key [`ObjectKey::plugin_object`] builds for `plugin_id`:
    /// `plugins/<id>/objects/`, what the plugin's stored objects are summed under.
    pub fn plugin_objects_prefix(plugin_id: &str) -> Result<String, KeyError> {
        validate_plugin_id(plugin_id)?;
        Ok(format!("plugins/{plugin_id}/objects/"))
    }

    /// The object holding one batch of raw payloads, one JSON document per line:
    /// `plugins/<id>/raw/<source>/<yyyy-mm-dd>/<digest>.ndjson`.
    ///
    /// The digest is computed by the caller from the batch's event ids, so a retry of the
    /// same batch rewrites the same object instead of creating a new one.
    pub fn raw_batch(
        plugin_id: &str,
        source: &str,
        day: chrono::NaiveDate,
        digest_hex: &str,
    ) -> Result<Self, KeyError> {
        validate_plugin_id(plugin_id)?;
        validate_plugin_id(&source.replace('.', "-"))?;
        if digest_hex.is_empty() || !digest_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::BadSegment(digest_hex.to_owned()));
        }
        Ok(Self(format!(
            "plugins/{plugin_id}/raw/{source}/{day}/{digest_hex}.ndjson"
        )))
    }

    /// Parses a key previously produced by [`ObjectKey::as_str`] (for instance a stored
    /// `storage_key`), checking it has one of the shapes above.
    pub fn parse(full: &str) -> Result<Self, KeyError> {
        let rest = full
            .strip_prefix("plugins/")
            .ok_or_else(|| KeyError::BadSegment(full.to_owned()))?;
        let (plugin, rest) = rest
            .split_once('/')
            .ok_or_else(|| KeyError::BadSegment(full.to_owned()))?;
        validate_plugin_id(plugin)?;
        validate_relative_key(rest)?;
        if !(rest.starts_with("objects/") || rest.starts_with("raw/")) {
            return Err(KeyError::BadSegment(full.to_owned()));
        }
        Ok(Self(full.to_owned()))
    }

    /// The key as a string, relative to the bucket or data directory root.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_keys_stay_under_the_plugin_prefix() {
        let k = ObjectKey::plugin_object("github", "cache/page-1.json").unwrap();
        assert_eq!(k.as_str(), "plugins/github/objects/cache/page-1.json");
    }

    #[test]
    fn traversal_and_absolute_keys_are_refused() {
        for bad in [
            "../keywords/objects/x",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            "./a",
            "a/.",
            "..",
            "%2e%2e/x",
            "a\0b",
            "a\\b",
            "ünï",
            "",
        ] {
            assert!(
                ObjectKey::plugin_object("github", bad).is_err(),
                "{bad:?} must be refused"
            );
        }
        let long = "a".repeat(MAX_RELATIVE_KEY_LEN + 1);
        assert_eq!(
            ObjectKey::plugin_object("github", &long),
            Err(KeyError::TooLong(MAX_RELATIVE_KEY_LEN + 1))
        );
    }

    #[test]
    fn plugin_ids_must_be_kebab_case() {
        for bad in [
            "",
            "GitHub",
            "a/b",
            "-a",
            "a-",
            "a_b",
            "../x",
            &"a".repeat(65),
        ] {
            assert!(validate_plugin_id(bad).is_err(), "{bad:?}");
        }
        validate_plugin_id("dev-to-2").unwrap();
    }

    #[test]
    fn raw_batch_keys_are_deterministic_and_checked() {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let a = ObjectKey::raw_batch("github", "github", day, "ab12").unwrap();
        assert_eq!(
            a.as_str(),
            "plugins/github/raw/github/2024-01-02/ab12.ndjson"
        );
        assert!(ObjectKey::raw_batch("github", "../x", day, "ab").is_err());
        assert!(ObjectKey::raw_batch("github", "github", day, "zz/..").is_err());
        assert!(ObjectKey::raw_batch("github", "dev.to", day, "ab").is_ok());
    }

    #[test]
    fn parse_accepts_only_host_shaped_keys() {
        assert!(ObjectKey::parse("plugins/github/objects/a.json").is_ok());
        assert!(ObjectKey::parse("plugins/github/raw/github/2024-01-02/ab.ndjson").is_ok());
        assert!(ObjectKey::parse("plugins/github/../x").is_err());
        assert!(ObjectKey::parse("other/github/objects/a").is_err());
        assert!(ObjectKey::parse("plugins/github/secrets/a").is_err());
    }
}
