//! Plugin ids: the one place that says what a plugin id may look like.
//!
//! A plugin id becomes a key-value namespace, an object-key segment, a config section
//! and a log field, so it is checked once, here, at the bottom of the module graph
//! (this module imports nothing from the crate), and every layer above relies on it.

/// A plugin id that is not kebab-case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "plugin id {0:?} is not kebab-case (lowercase letters, digits and `-`, 1 to 64 characters, starting with a letter or digit)"
)]
pub struct BadPluginId(pub String);

/// Checks that a plugin id is kebab-case, so it is safe as a key segment and a KV namespace.
pub fn validate_plugin_id(id: &str) -> Result<(), BadPluginId> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(BadPluginId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_only() {
        for ok in ["github", "a", "feed-2", "x-y-z"] {
            assert!(validate_plugin_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a/b", &"a".repeat(65)] {
            assert!(validate_plugin_id(bad).is_err(), "{bad}");
        }
    }
}
