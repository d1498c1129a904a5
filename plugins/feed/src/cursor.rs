//! The cursor this plugin hands the host between runs of one feed.
//!
//! It is opaque to the host; inside it is a small JSON object: `feed` (the URL it
//! belongs to, so a cursor for another feed is never applied), the validators of the
//! last answer (`etag`, `last_modified`, sent back as `If-None-Match` and
//! `If-Modified-Since` so an unchanged feed costs one 304 and no parsing), and `seen`,
//! short digests of the entry ids of the last document, so an entry is handed to the
//! host once rather than on every run while it stays in the feed's window.
//!
//! The validators live here rather than in the plugin's key-value store because the
//! host persists the cursor together with the run's events: had the validators been
//! saved and the events not (a crash, a storage error), the next run would get a 304
//! and the entries would never be stored. The host also stores each (source, external
//! id) once, so a lost or discarded cursor costs a re-read, never a duplicate.

use serde::{Deserialize, Serialize};

/// The current cursor format; a cursor of another version is discarded.
const VERSION: u32 = 1;

/// Most entry digests kept: far more than any feed's window (10 to 100 entries), and
/// small enough (17 bytes each) to stay well inside the host's cursor limit.
pub(crate) const MAX_SEEN: usize = 1000;

/// Where the feed stands. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// Format version.
    pub(crate) v: u32,
    /// The feed's URL as the job names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) feed: Option<String>,
    /// The last answer's `ETag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) etag: Option<String>,
    /// The last answer's `Last-Modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_modified: Option<String>,
    /// Digests ([`digest`]) of the external ids in the last document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) seen: Vec<String>,
}

/// Why a stored cursor was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CursorError(pub(crate) String);

impl Cursor {
    /// A fresh cursor for `feed`: nothing fetched yet.
    pub(crate) fn start(feed: &str) -> Self {
        Self {
            v: VERSION,
            feed: Some(feed.to_owned()),
            ..Self::default()
        }
    }

    /// Reads the host's cursor for `feed`. `None` (first run) is a fresh start; a cursor
    /// that does not parse, has another version or belongs to another feed is reported
    /// so the caller can log it and start fresh.
    pub(crate) fn decode(raw: Option<&str>, feed: &str) -> Result<Self, CursorError> {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return Ok(Self::start(feed));
        };
        let cursor: Self = serde_json::from_str(raw)
            .map_err(|e| CursorError(format!("cursor is not this plugin's JSON ({e})")))?;
        if cursor.v != VERSION {
            return Err(CursorError(format!(
                "cursor version {} is not {VERSION}",
                cursor.v
            )));
        }
        if cursor.feed.as_deref() != Some(feed) {
            return Err(CursorError(format!(
                "cursor belongs to feed {:?}, this job reads {feed:?}",
                cursor.feed.as_deref().unwrap_or("")
            )));
        }
        Ok(cursor)
    }

    /// Whether the entry with this external id was in the last document.
    pub(crate) fn has_seen(&self, external_id: &str) -> bool {
        self.seen.contains(&digest(external_id))
    }

    /// The cursor as the opaque string the host stores.
    pub(crate) fn encode(&self) -> String {
        // Serialising plain strings and options into JSON cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// A short, stable digest of an external id (64-bit FNV-1a, hex). Only this plugin reads
/// it, to skip entries it handed over before; a collision would at worst skip one entry
/// until it leaves and re-enters the window, which is why 64 bits and not fewer.
pub(crate) fn digest(external_id: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let h = external_id
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = "https://zenn.dev/topics/rust/feed";

    #[test]
    fn first_run_starts_fresh() {
        assert_eq!(Cursor::decode(None, FEED), Ok(Cursor::start(FEED)));
        assert_eq!(Cursor::decode(Some(" "), FEED), Ok(Cursor::start(FEED)));
    }

    #[test]
    fn round_trips() {
        let c = Cursor {
            etag: Some("W/\"abc\"".into()),
            last_modified: Some("Tue, 01 Dec 2026 09:00:00 GMT".into()),
            seen: vec![digest("https://zenn.dev/a/articles/x")],
            ..Cursor::start(FEED)
        };
        let s = c.encode();
        assert_eq!(Cursor::decode(Some(&s), FEED), Ok(c.clone()));
        assert!(c.has_seen("https://zenn.dev/a/articles/x"));
        assert!(!c.has_seen("https://zenn.dev/a/articles/y"));
    }

    #[test]
    fn foreign_cursors_are_refused() {
        assert!(Cursor::decode(Some("52917340118"), FEED).is_err());
        assert!(
            Cursor::decode(
                Some(r#"{"v":2,"feed":"https://zenn.dev/topics/rust/feed"}"#),
                FEED
            )
            .is_err()
        );
        assert!(Cursor::decode(Some(r#"{"v":1,"feed":"https://dev.to/feed"}"#), FEED).is_err());
    }

    #[test]
    fn digests_are_stable() {
        assert_eq!(digest(""), "cbf29ce484222325");
        assert_eq!(digest("a"), "af63dc4c8601ec8c");
    }
}
