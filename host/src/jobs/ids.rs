//! Deterministic, time-sortable event ids.
//!
//! drowl recommends ULID-style ids for events. A random ULID would give the same event
//! a new id on every retry; here the 48-bit timestamp is the event's `occurred_at` and
//! the 80 "random" bits are a SHA-256 of (`source`, `external_id`), so the id is a valid
//! ULID, sorts by time, and is the same however often the event is ingested.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The drowl id of the event `external_id` from `source` that occurred at `occurred_at`.
pub fn event_id(source: &str, external_id: &str, occurred_at: DateTime<Utc>) -> String {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update([0u8]);
    h.update(external_id.as_bytes());
    let digest = h.finalize();
    let mut rand = [0u8; 16];
    rand[6..].copy_from_slice(&digest[..10]);
    let random = u128::from_be_bytes(rand);
    let ms = u64::try_from(occurred_at.timestamp_millis().max(0)).unwrap_or(0) & ((1 << 48) - 1);
    ulid::Ulid::from_parts(ms, random).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_distinct_and_time_sorted() {
        let t1: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let t2: DateTime<Utc> = "2024-01-02T00:00:00Z".parse().unwrap();
        assert_eq!(event_id("github", "1", t1), event_id("github", "1", t1));
        assert_ne!(event_id("github", "1", t1), event_id("github", "2", t1));
        assert_ne!(event_id("github", "1", t1), event_id("zenn", "1", t1));
        assert!(event_id("github", "9", t1) < event_id("github", "1", t2));
        assert_eq!(event_id("github", "1", t1).len(), 26);
    }
}
