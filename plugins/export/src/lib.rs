//! drowl's first-party export plugin: the stored events a `data_export` job selects,
//! written as gzipped NDJSON to the plugin's object storage (through the host: the plugin
//! never holds S3 credentials, and its keys stay under the prefix the host gives it) or
//! POSTed in batches to an HTTP endpoint the operator configured and granted.
//!
//! The host hands events in pages (see `host/src/jobs/export.rs`) and keeps the job's
//! progress, so a crashed or failed job resumes after the last delivered page; the host
//! also writes the manifest object listing every part. This plugin makes each page's
//! delivery idempotent: a page's object is named after its first event
//! (`<prefix>/<export id>/part-<first event id>.ndjson.gz`, the export id being the job
//! that started it), and an HTTP batch carries an
//! `Idempotency-Key` built the same way, so delivering a page again (a retry after a
//! crash between delivery and the host saving its progress) overwrites rather than
//! duplicates.
//!
//! Configuration:
//! - `destination`: `objects` (default) or `http`.
//! - `prefix`: the key prefix for objects (default `exports`).
//! - `endpoint`: the URL batches are POSTed to when `destination` is `http` (its origin
//!   must also be granted by the operator).

use std::io::Write as _;

use drowl_plugin_sdk::export::{Export, ExportRequest, ExportResult};
use drowl_plugin_sdk::prelude::*;

/// The plugin.
pub struct Exporter;

/// One stored event as an NDJSON line: drowl's fields, the raw payload as JSON.
pub fn line(e: &StoredEvent) -> serde_json::Value {
    let payload: serde_json::Value = serde_json::from_str(&e.event.payload)
        .unwrap_or_else(|_| serde_json::Value::String(e.event.payload.clone()));
    serde_json::json!({
        "id": e.id,
        "source": e.event.source,
        "externalId": e.event.external_id,
        "eventType": e.event.event_type,
        "occurredAt": e.event.occurred_at,
        "actor": e.event.actor.as_ref().map(|a| serde_json::json!({
            "platform": a.platform,
            "platformUserId": a.platform_user_id,
            "username": a.platform_username,
        })),
        "text": e.event.text,
        "payload": payload,
    })
}

/// The events as gzipped NDJSON, one line per event.
pub fn ndjson_gz(events: &[StoredEvent]) -> Result<Vec<u8>, JobError> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for e in events {
        serde_json::to_writer(&mut gz, &line(e))
            .and_then(|()| gz.write_all(b"\n").map_err(serde_json::Error::io))
            .map_err(|e| JobError::permanent(format!("cannot encode an event: {e}")))?;
    }
    gz.finish()
        .map_err(|e| JobError::permanent(format!("cannot compress the batch: {e}")))
}

/// Keeps a job id or event id usable as one key segment.
pub fn segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where a page goes, named after the job and its first event so a re-delivery of the
/// same page lands on the same key.
pub fn part_key(prefix: &str, job_id: &str, first_event: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() { "exports" } else { prefix };
    format!(
        "{prefix}/{}/part-{}.ndjson.gz",
        segment(job_id),
        segment(first_event)
    )
}

/// The export a page belongs to: the job that started it (`exportId` in a continuation
/// job's input), so every part of one export shares one folder.
pub fn export_id(req: &ExportRequest) -> String {
    serde_json::from_str::<serde_json::Value>(&req.job.input)
        .ok()
        .and_then(|i| i.get("exportId")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| req.job.job_id.clone())
}

/// Where a page goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The plugin's object storage, under `prefix`.
    Objects {
        /// The key prefix.
        prefix: String,
    },
    /// POSTed to `endpoint`.
    Http {
        /// The URL.
        endpoint: String,
    },
}

/// Reads the destination from the request's configuration.
pub fn destination(req: &ExportRequest) -> Result<Destination, JobError> {
    let value = |k: &str| {
        config::value_in(&req.config, k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match value("destination").unwrap_or("objects") {
        "objects" => Ok(Destination::Objects {
            prefix: value("prefix").unwrap_or("exports").to_owned(),
        }),
        "http" => match value("endpoint") {
            Some(endpoint) => Ok(Destination::Http {
                endpoint: endpoint.to_owned(),
            }),
            None => Err(JobError::invalid_config(
                "destination is http but `endpoint` is not set; set it to the URL batches are POSTed to",
            )),
        },
        other => Err(JobError::invalid_config(format!(
            "destination `{other}` is not `objects` or `http`"
        ))),
    }
}

impl Export for Exporter {
    fn manifest() -> Manifest {
        Manifest::builder("export", "Export", env!("CARGO_PKG_VERSION"))
            .description(
                "Writes the events a data_export job selects as gzipped NDJSON to object \
                 storage, or POSTs them in batches to an HTTP endpoint.",
            )
            .author("drowl", None, None)
            .capability(Capability::Export)
            .config(
                ConfigField::string("destination", "Destination")
                    .description("`objects` (the plugin's object storage) or `http`.")
                    .default_value("objects"),
            )
            .config(
                ConfigField::string("prefix", "Object key prefix")
                    .description("Where parts go in object storage, under the plugin's own prefix.")
                    .default_value("exports"),
            )
            .config(ConfigField::url("endpoint", "Endpoint").description(
                "The URL each batch is POSTed to (gzipped NDJSON) when destination is `http`; \
                 the operator must grant its origin.",
            ))
            .outbound_host("{{endpoint}}")
            .build()
    }

    fn deliver(req: ExportRequest) -> Result<ExportResult, JobError> {
        let Some(first) = req.events.first() else {
            return Ok(ExportResult {
                delivered: 0,
                location: None,
            });
        };
        let body = ndjson_gz(&req.events)?;
        let delivered = u32::try_from(req.events.len()).unwrap_or(u32::MAX);
        let location = match destination(&req)? {
            Destination::Objects { prefix } => {
                let key = part_key(&prefix, &export_id(&req), &first.id);
                objects::put(&key, &body, "application/gzip")?
            }
            Destination::Http { endpoint } => {
                let idempotency = format!("{}:{}", req.job.idempotency_key, first.id);
                http::Request::post(&endpoint, body)
                    .header("content-type", "application/x-ndjson")
                    .header("content-encoding", "gzip")
                    .header("idempotency-key", &idempotency)
                    .send()?
                    .error_for_status()?;
                endpoint
            }
        };
        Ok(ExportResult {
            delivered,
            location: Some(location),
        })
    }
}

drowl_plugin_sdk::export_plugin!(Exporter);
