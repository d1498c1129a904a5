//! Storing what a plugin returns in one call (an ingestion page, a webhook delivery's
//! events): the same checks and the same writes, whoever produced it.
//!
//! The page is validated whole first (see [`super::output`]: owned source, identities on
//! the plugin's own platforms, RFC 3339 time, JSON payload, sizes, no NUL, no secret in
//! the cursor), so nothing of a bad page is stored. Then raw payloads are written to
//! object storage, one deterministic NDJSON object per source per page, so a retry
//! rewrites the same object; then identities; then event rows in one idempotent batch
//! whose `storage_key` points into that object. A crash at any point leaves no row
//! pointing at a missing object.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::model::{JobFailure, JobRequest};
use super::output::{self, OutputScope};
use super::registry::ReadyPlugin;
use crate::bindings::types;
use crate::storage::{IdentityRecord, NewEvent, ObjectKey, Storage, WriteOutcome};

/// What a plugin returned in one call, to be stored as one unit.
pub(super) struct Page<'a> {
    /// Its events.
    pub(super) events: &'a [types::Event],
    /// Accounts it observed besides the events' actors.
    pub(super) identities: &'a [types::IdentityObservation],
    /// Where the next page starts (ingestion only), checked for secrets.
    pub(super) next_cursor: Option<&'a str>,
    /// Payload and text bytes of its events, against the page budget.
    pub(super) bytes: usize,
}

impl<'a> Page<'a> {
    /// A page of `events` and `identities` with no cursor, its bytes counted.
    pub(super) fn of(
        events: &'a [types::Event],
        identities: &'a [types::IdentityObservation],
    ) -> Self {
        Self {
            events,
            identities,
            next_cursor: None,
            bytes: event_bytes(events),
        }
    }
}

/// Payload and text bytes of `events`: what a page's byte budget counts.
pub(super) fn event_bytes(events: &[types::Event]) -> usize {
    events
        .iter()
        .map(|e| e.payload.len() + e.text.as_ref().map_or(0, String::len))
        .sum()
}

/// What storing one page did.
#[derive(Debug, Default)]
pub(super) struct PageOutcome {
    /// Events the plugin returned.
    pub(super) received: u64,
    /// Event rows written, and those already stored.
    pub(super) events: WriteOutcome,
    /// Identities upserted.
    pub(super) identities: u64,
    /// Raw payload objects written.
    pub(super) objects: u64,
}

/// One validated event before its payload location is known.
struct Checked {
    id: String,
    event: types::Event,
    occurred_at: DateTime<Utc>,
    payload: serde_json::Value,
}

/// Checks `events[i]` against the plugin's scope and drowl's columns.
fn check_event(i: usize, e: &types::Event, scope: &OutputScope) -> Result<Checked, JobFailure> {
    let field = |name: &str| format!("events[{i}].{name}");
    scope.source(&field("source"), &e.source)?;
    output::text(
        &field("external-id"),
        &e.external_id,
        1,
        output::MAX_EXTERNAL_ID_BYTES,
    )?;
    output::text(
        &field("event-type"),
        &e.event_type,
        1,
        output::MAX_EVENT_TYPE_BYTES,
    )?;
    let occurred_at = DateTime::parse_from_rfc3339(&e.occurred_at)
        .map_err(|err| {
            output::invalid(
                field("occurred-at"),
                format!("{} is not RFC 3339: {err}", output::shown(&e.occurred_at)),
            )
        })?
        .with_timezone(&Utc);
    let payload: serde_json::Value = serde_json::from_str(&e.payload)
        .map_err(|err| output::invalid(field("payload"), format!("is not JSON: {err}")))?;
    if output::json_has_nul(&payload) {
        return Err(output::invalid(
            field("payload"),
            "contains a NUL character, which PostgreSQL cannot store",
        ));
    }
    if let Some(t) = &e.text {
        output::text(&field("text"), t, 0, usize::MAX)?;
    }
    Ok(Checked {
        id: super::ids::event_id(&e.source, &e.external_id, occurred_at),
        event: e.clone(),
        occurred_at,
        payload,
    })
}

/// Checks one page whole, then stores it: raw payload objects, identities, events.
pub(super) async fn store_page(
    storage: &Storage,
    plugin: &ReadyPlugin,
    scope: &OutputScope,
    job: &JobRequest,
    batch: Page<'_>,
) -> Result<PageOutcome, JobFailure> {
    let budget = &plugin.budget;
    let bytes = batch.bytes;
    if batch.events.len() > budget.max_events_per_batch {
        return Err(JobFailure::InvalidOutput(format!(
            "a page of {} events is over the limit of {}; return smaller pages",
            batch.events.len(),
            budget.max_events_per_batch
        )));
    }
    if bytes > budget.max_batch_bytes {
        return Err(JobFailure::InvalidOutput(format!(
            "a page of {bytes} bytes is over the limit of {}; return smaller pages",
            budget.max_batch_bytes
        )));
    }
    // The whole page is checked before anything of it is stored: the cursor, every
    // event, every identity.
    output::cursor(batch.next_cursor, &plugin.env.redactor)?;
    let mut checked = Vec::with_capacity(batch.events.len());
    let mut seen = BTreeSet::new();
    let mut identities: BTreeMap<(String, String), IdentityRecord> = BTreeMap::new();
    for (i, o) in batch.identities.iter().enumerate() {
        let r = scope.identity(&format!("identities[{i}]"), o)?;
        identities.insert((r.platform.clone(), r.platform_user_id.clone()), r);
    }
    for (i, e) in batch.events.iter().enumerate() {
        let c = check_event(i, e, scope)?;
        if let Some(a) = &e.actor {
            let r = scope.identity(&format!("events[{i}].actor"), a)?;
            identities.insert((r.platform.clone(), r.platform_user_id.clone()), r);
        }
        // A page that repeats an event stores it once.
        if seen.insert(c.id.clone()) {
            checked.push(c);
        }
    }

    // Raw payloads first: one NDJSON object per source, named by a digest of its event
    // ids so a retry of the same page writes the same key.
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in checked.iter().enumerate() {
        by_source
            .entry(c.event.source.as_str())
            .or_default()
            .push(i);
    }
    let mut storage_keys = vec![None; checked.len()];
    let mut objects = 0;
    for (source, idx) in &by_source {
        let mut h = Sha256::new();
        for &i in idx {
            h.update(checked[i].id.as_bytes());
        }
        let digest = hex::encode(&h.finalize()[..16]);
        let day = idx
            .iter()
            .map(|&i| checked[i].occurred_at)
            .max()
            .unwrap_or_default()
            .date_naive();
        let key = ObjectKey::raw_batch(plugin.id(), source, day, &digest)
            .map_err(|e| JobFailure::InvalidOutput(e.to_string()))?;
        let mut body = Vec::with_capacity(idx.len() * 512);
        for (line, &i) in idx.iter().enumerate() {
            // Each line is the payload as the plugin returned it, on one line so that
            // `#line` finds it. Valid JSON (checked above) holds line breaks only as
            // whitespace between tokens (inside strings they are escaped), so turning
            // them into spaces keeps its value and key order; pretty-printed payloads
            // (the GitHub plugin passes items on as received) would otherwise shift
            // every later line.
            body.extend(
                checked[i]
                    .event
                    .payload
                    .trim()
                    .bytes()
                    .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
            body.push(b'\n');
            storage_keys[i] = Some(format!("{}#{line}", key.as_str()));
        }
        storage
            .objects
            .put(&key, body.into(), "application/x-ndjson")
            .await?;
        objects += 1;
    }

    let identity_rows: Vec<IdentityRecord> = identities.into_values().collect();
    if !identity_rows.is_empty() {
        storage.events.upsert_identities(&identity_rows).await?;
    }

    let rows: Vec<NewEvent> = checked
        .into_iter()
        .zip(storage_keys)
        .map(|(c, key)| NewEvent {
            id: c.id,
            source: c.event.source,
            external_id: c.event.external_id,
            event_type: c.event.event_type,
            occurred_at: c.occurred_at,
            raw_payload: c.payload,
            storage_key: key,
            text: c.event.text,
            actor: c.event.actor.map(|a| (a.platform, a.platform_user_id)),
            plugin_id: plugin.id().to_owned(),
            plugin_version: plugin.loaded.manifest.version.clone(),
            correlation_id: Some(job.id.clone()),
        })
        .collect();
    let outcome = if rows.is_empty() {
        WriteOutcome::default()
    } else {
        storage.events.insert_events(&rows).await?
    };
    Ok(PageOutcome {
        received: batch.events.len() as u64,
        events: outcome,
        identities: identity_rows.len() as u64,
        objects,
    })
}
