//! Small helpers shared by the storage backends, so every backend answers the same way.

use chrono::{DateTime, Utc};

use super::{IdentityRecord, KeywordRecord, ProposedLink, ResolutionBatch, StorageError};

/// Fixed-width UTC timestamp format used where timestamps are stored as text (SQLite):
/// fixed width makes string order equal time order, so range filters work on text. It is
/// RFC 3339, which is what sqlx reads back into a `DateTime`.
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Formats an instant as sortable text.
pub(crate) fn ts_to_text(t: &DateTime<Utc>) -> String {
    t.format(TS_FORMAT).to_string()
}

/// The smallest string greater than every string that starts with `prefix`, or `None`
/// when there is no such bound (empty prefix, or only `char::MAX`s).
///
/// UTF-8 byte order equals code-point order, so `prefix <= key < bound` selects exactly the
/// keys starting with `prefix` while still using the primary-key index as a range scan.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        // Skip the surrogate range, which has no `char`s.
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Keeps the last record for each (`platform`, `platform_user_id`), in first-seen order.
///
/// A batch naming the same account twice would otherwise make PostgreSQL refuse the upsert
/// ("cannot affect row a second time"); the later observation is the fresher one.
pub(crate) fn dedup_identities(items: &[IdentityRecord]) -> Vec<&IdentityRecord> {
    dedup_by_key(items, |i| {
        (i.platform.as_str(), i.platform_user_id.as_str())
    })
}

/// Keeps the last record for each keyword id, in first-seen order.
pub(crate) fn dedup_keywords(items: &[KeywordRecord]) -> Vec<&KeywordRecord> {
    dedup_by_key(items, |k| k.id.as_str())
}

fn dedup_by_key<'a, T, K: std::hash::Hash + Eq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut pos: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match pos.entry(key(item)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()] = item,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(item);
            }
        }
    }
    out
}

/// Orders an account pair the way drowl stores links (`identity_id_1 < identity_id_2`),
/// refusing a link from an account to itself.
pub(crate) fn ordered_pair<'a>(a: &'a str, b: &'a str) -> Result<(&'a str, &'a str), StorageError> {
    match a.cmp(b) {
        std::cmp::Ordering::Less => Ok((a, b)),
        std::cmp::Ordering::Greater => Ok((b, a)),
        std::cmp::Ordering::Equal => Err(StorageError::Invalid(format!(
            "identity link from identity {a} to itself"
        ))),
    }
}

/// Identity metadata as JSON text: an object (`null` counts as `{}`), since backends merge
/// it key by key on re-observation and a non-object would not merge.
pub(crate) fn metadata_json(v: &serde_json::Value) -> Result<String, StorageError> {
    match v {
        serde_json::Value::Null => Ok("{}".to_owned()),
        serde_json::Value::Object(_) => serde_json::to_string(v)
            .map_err(|e| StorageError::Invalid(format!("unserialisable metadata: {e}"))),
        other => Err(StorageError::Invalid(format!(
            "identity metadata must be a JSON object, not {other}"
        ))),
    }
}

/// Checks the facts every backend enforces on a link before writing it.
pub(crate) fn check_link_score(score: f32) -> Result<(), StorageError> {
    if (0.0..=1.0).contains(&score) {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "identity link confidence_score {score} is outside 0..1"
        )))
    }
}

/// The `confidence_score` of a link a person asked for, from its `confidence`: a person
/// names a level, not a number, and drowl's schema wants both. `None` for a confidence
/// drowl does not know.
pub(crate) fn manual_link_score(confidence: &str) -> Option<f32> {
    Some(match confidence {
        "manual" => 1.0,
        "high" => 0.9,
        "medium" => 0.7,
        "low" => 0.5,
        "suggested" => 0.3,
        _ => return None,
    })
}

/// Checks a person's link request before any backend writes it: a known confidence and
/// two different ids. Returns the ordered pair and the score.
pub(crate) fn check_manual_link<'a>(
    a: &'a str,
    b: &'a str,
    confidence: &str,
) -> Result<(&'a str, &'a str, f32), StorageError> {
    let score = manual_link_score(confidence).ok_or_else(|| {
        StorageError::Invalid(format!(
            "identity link confidence `{confidence}` is not one of {}",
            super::LINK_CONFIDENCES.join(", ")
        ))
    })?;
    let (one, two) = ordered_pair(a, b)?;
    Ok((one, two, score))
}

/// The confidences a plugin may propose a link with: not `manual`, which says a person
/// made the link.
pub(crate) const PROPOSED_LINK_CONFIDENCES: [&str; 4] = ["high", "medium", "low", "suggested"];

/// A link a resolution plugin proposed, as every backend stores it: the ordered pair, the
/// confidence (one of [`PROPOSED_LINK_CONFIDENCES`]) and the score clamped to 0..=1 (a
/// heuristic's score is a ranking, not a checked fact, so a slightly-off one is kept
/// rather than failing the batch; a NaN says nothing and is refused).
pub(crate) fn proposed_link(l: &ProposedLink) -> Result<(&str, &str, f32), StorageError> {
    if !PROPOSED_LINK_CONFIDENCES.contains(&l.confidence.as_str()) {
        return Err(StorageError::Invalid(format!(
            "proposed link confidence `{}` is not one of {}",
            l.confidence,
            PROPOSED_LINK_CONFIDENCES.join(", ")
        )));
    }
    if l.score.is_nan() {
        return Err(StorageError::Invalid(format!(
            "proposed link between {} and {} has no score (NaN)",
            l.a, l.b
        )));
    }
    let (one, two) = ordered_pair(&l.a, &l.b)?;
    Ok((one, two, l.score.clamp(0.0, 1.0)))
}

/// A resolution batch's index, as every backend writes it: the identities whose keys are
/// replaced (each once, sorted), and the (identity, key) rows that replace them (each
/// once, sorted, so overlapping batches lock rows in the same order). An identity named
/// twice gets the keys of both entries.
pub(crate) fn resolution_index(batch: &ResolutionBatch) -> (Vec<&str>, Vec<(&str, &str)>) {
    let mut indexed: Vec<&str> = batch.index.iter().map(|(id, _)| id.as_str()).collect();
    indexed.sort_unstable();
    indexed.dedup();
    let mut keys: Vec<(&str, &str)> = batch
        .index
        .iter()
        .flat_map(|(id, keys)| keys.iter().map(move |k| (id.as_str(), k.as_str())))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    (indexed, keys)
}

/// Every identity id a resolution batch names (indexed or linked), each once, sorted:
/// all must exist before anything of the batch is written.
pub(crate) fn resolution_identities(batch: &ResolutionBatch) -> Vec<&str> {
    let mut ids: Vec<&str> = batch
        .index
        .iter()
        .map(|(id, _)| id.as_str())
        .chain(
            batch
                .links
                .iter()
                .flat_map(|l| [l.a.as_str(), l.b.as_str()]),
        )
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Fails with [`unknown_identity`] for the first of `named` that `exists` says is not
/// stored.
pub(crate) fn check_identities_exist(
    named: &[&str],
    exists: impl Fn(&str) -> bool,
) -> Result<(), StorageError> {
    match named.iter().find(|id| !exists(id)) {
        Some(missing) => Err(unknown_identity(missing)),
        None => Ok(()),
    }
}

/// The error for a link request naming an identity that does not exist.
pub(crate) fn unknown_identity(id: &str) -> StorageError {
    StorageError::Invalid(format!("identity `{id}` does not exist"))
}

/// A rollup's `day` as both backends read it back (`YYYY-MM-DD` text).
pub(crate) fn parse_day(text: &str) -> Result<chrono::NaiveDate, StorageError> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| StorageError::Invalid(format!("metrics day {text:?} is not a date: {e}")))
}

/// The rollup rows both SQL backends read, as [`DailyMetrics`](super::DailyMetrics):
/// `(day, source, event_type, event_count, actor_count)`,
/// `(day, keyword_id, match_count, event_count)`, `(day, active_people, active_accounts)`
/// and `(day, platform, new_identities)`.
pub(crate) fn daily_metrics_from_rows(
    events: Vec<(String, String, String, i64, i64)>,
    keywords: Vec<(String, String, i64, i64)>,
    people: Vec<(String, i64, i64)>,
    identities: Vec<(String, String, i64)>,
) -> Result<super::DailyMetrics, StorageError> {
    Ok(super::DailyMetrics {
        events: events
            .into_iter()
            .map(|(day, source, event_type, event_count, actor_count)| {
                Ok(super::DailyEventMetric {
                    day: parse_day(&day)?,
                    source,
                    event_type,
                    event_count,
                    actor_count,
                })
            })
            .collect::<Result<_, StorageError>>()?,
        keywords: keywords
            .into_iter()
            .map(|(day, keyword_id, match_count, event_count)| {
                Ok(super::DailyKeywordMetric {
                    day: parse_day(&day)?,
                    keyword_id,
                    match_count,
                    event_count,
                })
            })
            .collect::<Result<_, StorageError>>()?,
        people: people
            .into_iter()
            .map(|(day, active_people, active_accounts)| {
                Ok(super::DailyPeopleMetric {
                    day: parse_day(&day)?,
                    active_people,
                    active_accounts,
                })
            })
            .collect::<Result<_, StorageError>>()?,
        identities: identities
            .into_iter()
            .map(|(day, platform, new_identities)| {
                Ok(super::DailyIdentityMetric {
                    day: parse_day(&day)?,
                    platform,
                    new_identities,
                })
            })
            .collect::<Result<_, StorageError>>()?,
    })
}

/// A delivery's headers as the `webhook_deliveries.headers` column holds them: a JSON
/// array of `[name, value]` pairs, in order (a header may repeat).
pub(crate) fn headers_to_json(headers: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Array(
        headers
            .iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect(),
    )
}

/// The headers [`headers_to_json`] stored, read back.
pub(crate) fn headers_from_json(
    v: serde_json::Value,
) -> Result<Vec<(String, String)>, StorageError> {
    serde_json::from_value(v).map_err(|e| {
        StorageError::Invalid(format!(
            "webhook_deliveries.headers is not a list of [name, value] pairs: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_select_exactly_the_prefix() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }

    #[test]
    fn timestamps_round_trip_and_sort() {
        let a = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.5Z")
            .unwrap()
            .to_utc();
        let b = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.123456Z")
            .unwrap()
            .to_utc();
        // Read back as sqlx's SQLite decoder reads a TEXT timestamp: RFC 3339 first.
        assert_eq!(
            DateTime::parse_from_rfc3339(&ts_to_text(&a))
                .unwrap()
                .to_utc(),
            a
        );
        assert!(ts_to_text(&b) < ts_to_text(&a));
    }
}
