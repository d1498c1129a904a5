//! The cursor this plugin hands the host between pages and between runs.
//!
//! It is opaque to the host; inside it is a small JSON object:
//!
//! - during a sweep (newest to oldest through the feed): `next` (the `Link: rel="next"`
//!   URL to fetch), `top` (the newest event id seen so far in this sweep) and `hwm`
//!   (the high-water mark of the previous sweep, where this sweep stops);
//! - between sweeps: only `hwm`, the newest event id ever ingested, so the next run
//!   starts at page 1 and stops as soon as it reaches an event it already has.
//!
//! Both also carry `feed` (the API path the cursor belongs to, so a cursor for another
//! feed is never applied) and `etag` (page 1's `ETag` from the last sweep, sent as
//! `If-None-Match` so an unchanged feed costs one 304 and no rate limit). The ETag lives
//! in the cursor rather than in the key-value store because the host persists the
//! cursor together with the page's events: the two cannot disagree after a crash.

use serde::{Deserialize, Serialize};

use crate::event_id::EventId;

/// The current cursor format; a cursor of another version is discarded.
const VERSION: u32 = 1;

/// Where the feed stands. See the module docs for the meaning of each field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// Format version.
    pub(crate) v: u32,
    /// The feed's API path (`/users/octocat/events/public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) feed: Option<String>,
    /// Next page of the current sweep; `None` between sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<String>,
    /// Newest event id seen in the current sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) top: Option<EventId>,
    /// Newest event id of the last completed sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hwm: Option<EventId>,
    /// Page 1's `ETag` from the last sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) etag: Option<String>,
}

/// Why a stored cursor was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CursorError(pub(crate) String);

impl Cursor {
    /// A fresh cursor for `feed`: no sweep in progress, nothing ingested yet.
    pub(crate) fn start(feed: &str) -> Self {
        Self {
            v: VERSION,
            feed: Some(feed.to_owned()),
            ..Self::default()
        }
    }

    /// Reads the host's cursor for `feed`. `None` (first run) is a fresh start; a
    /// cursor that does not parse, has another version or belongs to another feed is
    /// reported so the caller can log it and start fresh: re-reading a feed is safe
    /// because the host stores each (source, external id) once.
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

    /// The cursor as the opaque string the host stores.
    pub(crate) fn encode(&self) -> String {
        // Serialising plain strings and options into JSON cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = "/users/octocat/events/public";

    #[test]
    fn first_run_starts_fresh() {
        assert_eq!(Cursor::decode(None, FEED), Ok(Cursor::start(FEED)));
        assert_eq!(Cursor::decode(Some(" "), FEED), Ok(Cursor::start(FEED)));
    }

    #[test]
    fn round_trips_and_stays_small() {
        let c = Cursor {
            v: 1,
            feed: Some(FEED.to_owned()),
            next: None,
            top: None,
            hwm: EventId::parse("52917340118"),
            etag: None,
        };
        let s = c.encode();
        assert_eq!(
            s,
            r#"{"v":1,"feed":"/users/octocat/events/public","hwm":"52917340118"}"#
        );
        assert_eq!(Cursor::decode(Some(&s), FEED), Ok(c));
    }

    #[test]
    fn foreign_cursors_are_refused() {
        assert!(Cursor::decode(Some("52917340118"), FEED).is_err());
        assert!(
            Cursor::decode(
                Some(r#"{"v":2,"feed":"/users/octocat/events/public"}"#),
                FEED
            )
            .is_err()
        );
        assert!(Cursor::decode(Some(r#"{"v":1,"feed":"/orgs/github/events"}"#), FEED).is_err());
        assert!(
            Cursor::decode(
                Some(r#"{"v":1,"feed":"/users/octocat/events/public","hwm":"x"}"#),
                FEED
            )
            .is_err()
        );
    }
}
