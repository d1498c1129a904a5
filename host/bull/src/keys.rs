//! Key names of Bull's Redis layout.

/// Builds `<prefix>:<queue>:<suffix>` keys.
///
/// Why a type: the same prefix is passed to every script (which builds job keys itself, as
/// Bull's scripts do) and used for pub/sub channel names, so it is computed once.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    base: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str, queue: &str) -> Self {
        Self {
            base: format!("{prefix}:{queue}:"),
        }
    }

    /// `<prefix>:<queue>:` — the ARGV every script receives.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.base, suffix)
    }
}
