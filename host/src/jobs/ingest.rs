//! `event_ingestion`: page through a connector, storing each page before asking for the
//! next.
//!
//! Each page is stored by [`super::page`] (validated whole, then raw payloads, identities
//! and events, idempotently); only then is the plugin's cursor saved, so a crash at any
//! point leaves no row pointing at a missing object, and the next run resumes from the
//! last saved cursor.

use std::collections::BTreeMap;

use chrono::DateTime;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::handler::{PluginCall, PluginJob, job_context, plugin_failure};
use super::model::{JobFailure, JobRequest};
use super::output::OutputScope;
use super::page::{Page, PageOutcome, event_bytes, store_page};
use super::registry::ReadyPlugin;
use crate::bindings::ingestion::exports::drowl::plugin::ingestion::IngestRequest;
use crate::capabilities::PluginInstance;
use crate::runtime::Role;
use crate::storage::Storage;

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
        let page = Page {
            events: &batch.events,
            identities: &batch.identities,
            next_cursor: batch.next_cursor.as_deref(),
            bytes: event_bytes(&batch.events),
        };
        instance.add_bytes_from_plugin(page.bytes as u64);
        let stored = store_page(storage, plugin, scope, job, page).await?;
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

impl Totals {
    fn add(&mut self, p: &PageOutcome) {
        self.received += p.received;
        self.inserted += p.events.inserted;
        self.existing += p.events.existing;
        self.identities += p.identities;
        self.objects += p.objects;
    }
}
