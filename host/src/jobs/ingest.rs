//! `event_ingestion`: page through a connector, storing each page before asking for the
//! next.
//!
//! For every page: the plugin's output is validated whole (see [`super::output`]: owned
//! source, identities on its own platforms, RFC 3339 time, JSON payload, sizes, no NUL,
//! no secret in the cursor); raw payloads are written to object storage first, one
//! deterministic NDJSON object per source per page, so a retry rewrites the same object;
//! then event rows go in one idempotent batch whose `storage_key` points into that
//! object; then the plugin's cursor is saved. A crash at any point leaves no row pointing
//! at a missing object, and the next run resumes from the last saved cursor.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::handler::{PluginCall, PluginJob, job_context, plugin_failure};
use super::model::{JobFailure, JobRequest};
use super::output::{self, OutputScope};
use super::registry::ReadyPlugin;
use crate::bindings::ingestion::exports::drowl::plugin::ingestion::{IngestBatch, IngestRequest};
use crate::bindings::types;
use crate::capabilities::PluginInstance;
use crate::runtime::Role;
use crate::storage::{IdentityRecord, NewEvent, ObjectKey, Storage, WriteOutcome};

/// KV namespace where the host keeps ingestion cursors; no plugin id can equal it.
pub const CURSOR_NAMESPACE: &str = "drowl-host/cursors";

/// Input fields that describe one run rather than the stream being ingested.
const VOLATILE_INPUT: &[&str] = &["since", "cursor", "reset"];

/// The stream a job ingests: `input.stream` if given, otherwise a digest of the input
/// without its per-run fields, so the same daily job resumes the same cursor.
pub fn stream_key(job: &JobRequest) -> String {
    if let Some(s) = job.input_str("stream") {
        return s.to_owned();
    }
    let mut map: BTreeMap<&String, &serde_json::Value> = BTreeMap::new();
    if let Some(obj) = job.input.as_object() {
        for (k, v) in obj {
            if !VOLATILE_INPUT.contains(&k.as_str()) {
                map.insert(k, v);
            }
        }
    }
    let canonical = serde_json::to_string(&map).unwrap_or_default();
    hex::encode(&Sha256::digest(canonical.as_bytes())[..12])
}

fn cursor_key(plugin_id: &str, stream: &str) -> String {
    format!("{plugin_id}/{stream}")
}

/// An ingestion job: pages from a connector until it has no more or the page budget
/// is spent.
pub(crate) struct Ingest;

impl PluginJob for Ingest {
    type Prepared = ();

    fn role(&self) -> Role {
        Role::Ingestion
    }

    async fn prepare(&self, _: &Storage, _: &JobRequest) -> Result<(), JobFailure> {
        Ok(())
    }

    async fn run(
        &self,
        call: &mut PluginCall<'_>,
        (): (),
    ) -> Result<serde_json::Value, JobFailure> {
        pages(
            call.storage,
            call.plugin,
            call.scope,
            call.job,
            call.instance,
        )
        .await
    }
}

async fn pages(
    storage: &Storage,
    plugin: &ReadyPlugin,
    scope: &OutputScope,
    job: &JobRequest,
    instance: &mut PluginInstance,
) -> Result<serde_json::Value, JobFailure> {
    let plugin_id = plugin.id();
    let stream = stream_key(job);
    let ckey = cursor_key(plugin_id, &stream);
    let reset = job
        .input
        .get("reset")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    // What the cursor key holds, when known: a page that leaves the cursor where it was
    // (a poll that found nothing new) then costs no write.
    let mut saved: Option<Option<String>> = None;
    let mut cursor = match job.input_str("cursor") {
        Some(c) => Some(c.to_owned()),
        None if reset => None,
        None => {
            let c = storage
                .kv
                .get(CURSOR_NAMESPACE, &ckey)
                .await?
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            saved = Some(c.clone());
            c
        }
    };
    let since = job.input_str("since").map(str::to_owned);
    if let Some(s) = &since {
        DateTime::parse_from_rfc3339(s).map_err(|e| {
            JobFailure::InvalidJob(format!("input.since {s:?} is not RFC 3339: {e}"))
        })?;
    }
    let started_cursor = cursor.clone();
    let mut totals = Totals::default();
    let mut has_more = true;
    while has_more && totals.pages < plugin.budget.max_pages_per_job {
        let req = IngestRequest {
            job: job_context(job),
            since: since.clone(),
            cursor: cursor.clone(),
            config: plugin.env.config.values_list(),
        };
        let batch = instance
            .ingest(&req)
            .await?
            .map_err(|e| plugin_failure(e, plugin))?;
        totals.pages += 1;
        if let Some(c) = &batch.next_cursor
            && c.len() > plugin.budget.max_cursor_bytes
        {
            // The cursor is stored, sent back with every page and copied into the job's
            // result: a plugin must keep its position small (an id, a timestamp, an ETag).
            return Err(JobFailure::InvalidOutput(format!(
                "next-cursor is {} bytes, over the {}-byte cursor budget (--max-cursor-bytes); keep the position, not the data, in the cursor",
                c.len(),
                plugin.budget.max_cursor_bytes
            )));
        }
        let bytes: usize = batch
            .events
            .iter()
            .map(|e| e.payload.len() + e.text.as_ref().map_or(0, String::len))
            .sum();
        instance.add_bytes_from_plugin(bytes as u64);
        let stored = store_page(storage, plugin, scope, job, &batch, bytes).await?;
        totals.add(&stored);
        // The cursor is saved only once the page is durable, so a crash re-fetches at
        // most this page, and idempotent writes make that harmless.
        if saved.as_ref() != Some(&batch.next_cursor) {
            match &batch.next_cursor {
                Some(c) => {
                    storage
                        .kv
                        .set(CURSOR_NAMESPACE, &ckey, c.as_bytes())
                        .await?
                }
                None => storage.kv.delete(CURSOR_NAMESPACE, &ckey).await?,
            }
            saved = Some(batch.next_cursor.clone());
        }
        cursor = batch.next_cursor.clone();
        has_more = batch.has_more;
        tracing::info!(
            job = %job.id, plugin = plugin_id, page = totals.pages,
            events = batch.events.len(), inserted = stored.events.inserted, "page stored"
        );
        if has_more && batch.next_cursor.is_none() {
            return Err(JobFailure::InvalidOutput(
                "the plugin said has-more but returned no next-cursor; it would fetch the same page forever".into(),
            ));
        }
    }
    Ok(json!({
        "pluginId": plugin_id,
        "pluginVersion": plugin.loaded.manifest.version,
        "stream": stream,
        "pages": totals.pages,
        "eventsReceived": totals.received,
        "eventsStored": totals.inserted,
        "duplicates": totals.existing,
        "identities": totals.identities,
        "objectsWritten": totals.objects,
        "cursorBefore": started_cursor,
        "cursor": cursor,
        "hasMore": has_more,
    }))
}

#[derive(Debug, Default)]
struct Totals {
    pages: u32,
    received: u64,
    inserted: u64,
    existing: u64,
    identities: u64,
    objects: u64,
}

#[derive(Debug, Default)]
struct PageOutcome {
    received: u64,
    events: WriteOutcome,
    identities: u64,
    objects: u64,
}

impl Totals {
    fn add(&mut self, p: &PageOutcome) {
        self.received += p.received;
        self.inserted += p.events.inserted;
        self.existing += p.events.existing;
        self.identities += p.identities;
        self.objects += p.objects;
    }
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

async fn store_page(
    storage: &Storage,
    plugin: &ReadyPlugin,
    scope: &OutputScope,
    job: &JobRequest,
    batch: &IngestBatch,
    bytes: usize,
) -> Result<PageOutcome, JobFailure> {
    let budget = &plugin.budget;
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
    output::cursor(batch.next_cursor.as_deref(), &plugin.env.redactor)?;
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
