//! `identity_resolution` with an identity plugin (contract 0.2.0): hand the plugin the
//! identities stored since its last run, a batch per call, and store the links it
//! proposes and the lookup keys it indexes each identity under.
//!
//! The run is incremental: the host keeps a resume point per plugin (the last identity
//! resolved, in `created_at`, `id` order) and a job starts from there, never from the
//! whole table. A job that runs out of pages continues in a follow-up job, so no job
//! runs near its deadline however many identities there are.
//!
//! Everything a call returns is checked whole before any of it is stored: links only
//! between identities the job was shown (its batches and what `directory.find`
//! returned), keys only for the batch's own identities, every string storable. Writing
//! is [`EventStore::save_resolution`](crate::storage::EventStore::save_resolution): one
//! transaction per batch, links only for pairs with no link at all, so a link a person
//! made or removed is never overridden or brought back. Re-running a batch (after a
//! crash before the resume point moved) changes nothing.

use std::collections::HashSet;

use chrono::Duration;
use serde_json::json;

use super::handler::{PluginCall, PluginJob, job_context, plugin_failure};
use super::model::{CONTINUATION_KEY, JobFailure, JobRequest};
use super::output;
use super::registry::ReadyPlugin;
use crate::bindings::identity::exports::drowl::plugin0_2_0::resolution as wit;
use crate::capabilities::directory::to_wit;
use crate::storage::{IdentityPosition, KnownIdentity, ProposedLink, ResolutionBatch, Storage};

/// KV namespace where the host keeps each identity plugin's resume point; no plugin id
/// can equal it.
pub const RESUME_NAMESPACE: &str = "drowl-host/resolution";
/// Identities handed to the plugin per call.
pub const IDENTITIES_PER_CALL: u32 = 200;
/// Most keys one identity may be indexed under.
pub const MAX_KEYS_PER_IDENTITY: usize = 32;
/// Longest key, in bytes (as `directory.find` accepts).
pub const MAX_KEY_BYTES: usize = crate::capabilities::directory::MAX_KEY_BYTES;
/// Longest link reason kept, in bytes.
pub const MAX_REASON_BYTES: usize = 1_000;

/// How far before the stored resume point a new job starts reading.
///
/// Identities are read in `created_at` order, but a transaction that inserted an
/// identity may commit after a later one was already read past (its `created_at` is its
/// start). Starting a minute early picks such late commits up; the identities read twice
/// cost one more look and write nothing new (`save_resolution` is idempotent).
pub const LATE_COMMIT_WINDOW: Duration = Duration::seconds(60);

/// The input field a continuation job resumes after (an [`IdentityPosition`]).
pub const RESUME_KEY: &str = "resumeAfter";

/// An identity-resolution job run by an identity plugin.
pub(crate) struct Resolve;

/// Where a job starts: from its continuation's position (exact), from the plugin's
/// stored resume point (with [`LATE_COMMIT_WINDOW`]), or from the start.
fn start_position(
    input: &serde_json::Value,
    stored: Option<IdentityPosition>,
) -> Result<Option<IdentityPosition>, JobFailure> {
    match input.get(RESUME_KEY) {
        None | Some(serde_json::Value::Null) => {}
        Some(v) => {
            return serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                JobFailure::InvalidJob(format!(
                    "input.{RESUME_KEY} must be {{\"created_at\": RFC 3339, \"id\": identity id}}: {e}"
                ))
            });
        }
    }
    if input.get("reset").and_then(serde_json::Value::as_bool) == Some(true) {
        return Ok(None);
    }
    Ok(stored.map(|p| IdentityPosition {
        created_at: p.created_at - LATE_COMMIT_WINDOW,
        id: String::new(),
    }))
}

impl PluginJob for Resolve {
    type Prepared = Option<IdentityPosition>;

    fn role(&self) -> crate::runtime::Role {
        crate::runtime::Role::Resolution
    }

    fn default_plugin(&self) -> Option<&'static str> {
        Some("identity")
    }

    async fn prepare(
        &self,
        _storage: &Storage,
        job: &JobRequest,
    ) -> Result<Self::Prepared, JobFailure> {
        if let Some(v) = job.input.get("reset")
            && !v.is_boolean()
        {
            return Err(JobFailure::InvalidJob(format!(
                "input.reset must be true or false, not {v}"
            )));
        }
        // Checked here so a malformed continuation costs no instantiation; the stored
        // point is read in `run`, once the plugin (and so its id) is known.
        start_position(&job.input, None)?;
        Ok(None)
    }

    async fn run(
        &self,
        call: &mut PluginCall<'_>,
        _prepared: Self::Prepared,
    ) -> Result<serde_json::Value, JobFailure> {
        let plugin = call.plugin;
        let kv = &call.storage.kv;
        let stored = kv
            .get(RESUME_NAMESPACE, plugin.id())
            .await?
            .and_then(|v| serde_json::from_slice::<IdentityPosition>(&v).ok());
        let started_at = start_position(&call.job.input, stored)?;
        let mut after = started_at.clone();
        let (mut read, mut calls, mut created, mut skipped, mut indexed) =
            (0u64, 0u32, 0u64, 0u64, 0u64);
        let mut more = false;
        loop {
            if calls >= plugin.budget.max_pages_per_job {
                more = true;
                break;
            }
            let batch = call
                .storage
                .events
                .identities_after(after.as_ref(), IDENTITIES_PER_CALL)
                .await?;
            let Some(last) = batch.last() else { break };
            let last = IdentityPosition {
                created_at: last.created_at,
                id: last.id.clone(),
            };
            read += batch.len() as u64;
            call.instance
                .state_mut()
                .directory_mut()
                .show(batch.iter().map(|i| i.id.as_str()));
            let req = wit::ResolveRequest {
                job: job_context(call.job),
                identities: batch.iter().map(to_wit).collect(),
                config: plugin.env.config.values_list(),
            };
            let result = call
                .instance
                .resolve(&req)
                .await?
                .map_err(|e| plugin_failure(e, plugin))?;
            calls += 1;
            let checked = check_result(&result, &batch, call, plugin)?;
            indexed += checked.index.len() as u64;
            let written = call.storage.events.save_resolution(&checked).await?;
            created += written.inserted;
            skipped += written.existing;
            // The resume point moves only once the batch is stored: a crash before this
            // re-resolves the batch, which writes nothing new.
            let point = serde_json::to_vec(&last).map_err(JobFailure::unstorable)?;
            kv.set(RESUME_NAMESPACE, plugin.id(), &point).await?;
            after = Some(last);
            if (batch.len() as u32) < IDENTITIES_PER_CALL {
                break;
            }
        }
        let continuation = match (&after, more) {
            (Some(last), true) => {
                let mut next = call.job.input.clone();
                next[RESUME_KEY] = json!(last);
                Some(next)
            }
            _ => None,
        };
        let mut out = json!({
            "pluginId": plugin.id(),
            "startedAfter": started_at,
            "identitiesRead": read,
            "calls": calls,
            "identitiesIndexed": indexed,
            "linksCreated": created,
            "linksSkipped": skipped,
            "resumePoint": after,
        });
        if let Some(next) = continuation {
            out[CONTINUATION_KEY] = next;
        }
        Ok(out)
    }
}

fn confidence(c: wit::LinkConfidence) -> &'static str {
    match c {
        wit::LinkConfidence::High => "high",
        wit::LinkConfidence::Medium => "medium",
        wit::LinkConfidence::Low => "low",
        wit::LinkConfidence::Suggested => "suggested",
    }
}

/// Checks one `resolve` result whole and turns it into the batch to store.
fn check_result(
    result: &wit::ResolveResult,
    batch: &[KnownIdentity],
    call: &mut PluginCall<'_>,
    plugin: &ReadyPlugin,
) -> Result<ResolutionBatch, JobFailure> {
    let in_batch: HashSet<&str> = batch.iter().map(|i| i.id.as_str()).collect();
    let mut index = Vec::with_capacity(result.index.len());
    let mut seen_entries = HashSet::new();
    for (i, entry) in result.index.iter().enumerate() {
        let field = format!("index[{i}]");
        if !in_batch.contains(entry.identity_id.as_str()) {
            return Err(output::invalid(
                format!("{field}.identity-id"),
                format!(
                    "{} is not an identity of this batch; index only the identities you were handed",
                    output::shown(&entry.identity_id)
                ),
            ));
        }
        if !seen_entries.insert(entry.identity_id.as_str()) {
            return Err(output::invalid(
                format!("{field}.identity-id"),
                format!(
                    "{} is indexed twice in one result; give each identity one entry",
                    output::shown(&entry.identity_id)
                ),
            ));
        }
        if entry.keys.len() > MAX_KEYS_PER_IDENTITY {
            return Err(output::invalid(
                format!("{field}.keys"),
                format!(
                    "has {} keys; at most {MAX_KEYS_PER_IDENTITY} per identity",
                    entry.keys.len()
                ),
            ));
        }
        for (k, key) in entry.keys.iter().enumerate() {
            output::text(&format!("{field}.keys[{k}]"), key, 1, MAX_KEY_BYTES)?;
        }
        let mut keys = entry.keys.clone();
        keys.sort();
        keys.dedup();
        index.push((entry.identity_id.clone(), keys));
    }
    let directory = call.instance.state_mut().directory_mut();
    let mut links = Vec::with_capacity(result.links.len());
    for (i, l) in result.links.iter().enumerate() {
        let field = format!("links[{i}]");
        for (end, id) in [("identity-a", &l.identity_a), ("identity-b", &l.identity_b)] {
            if !directory.was_shown(id) {
                return Err(output::invalid(
                    format!("{field}.{end}"),
                    format!(
                        "{} was never shown to this job (neither in a batch nor found through directory.find); link only identities you were handed",
                        output::shown(id)
                    ),
                ));
            }
        }
        if l.identity_a == l.identity_b {
            return Err(output::invalid(
                field,
                format!(
                    "links {} to itself; a link needs two identities",
                    output::shown(&l.identity_a)
                ),
            ));
        }
        if !l.score.is_finite() || !(0.0..=1.0).contains(&l.score) {
            return Err(output::invalid(
                format!("{field}.score"),
                format!("{} is not a number from 0.0 to 1.0", l.score),
            ));
        }
        let reason = plugin.env.redactor.clean(&l.reason);
        output::text(&format!("{field}.reason"), &reason, 1, MAX_REASON_BYTES)?;
        links.push(ProposedLink {
            a: l.identity_a.clone(),
            b: l.identity_b.clone(),
            confidence: confidence(l.confidence).to_owned(),
            score: l.score,
            reason,
        });
    }
    Ok(ResolutionBatch {
        plugin_id: plugin.id().to_owned(),
        index,
        links,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_new_job_starts_a_minute_before_the_stored_point_and_a_continuation_exactly() {
        let stored = IdentityPosition {
            created_at: at("2024-05-01T10:00:00Z"),
            id: "b".into(),
        };
        let start = start_position(&json!({}), Some(stored.clone())).unwrap();
        assert_eq!(
            start,
            Some(IdentityPosition {
                created_at: at("2024-05-01T09:59:00Z"),
                id: String::new()
            })
        );
        let cont = json!({ RESUME_KEY: { "created_at": "2024-05-01T11:00:00Z", "id": "c" } });
        assert_eq!(
            start_position(&cont, Some(stored.clone())).unwrap(),
            Some(IdentityPosition {
                created_at: at("2024-05-01T11:00:00Z"),
                id: "c".into()
            })
        );
        assert_eq!(
            start_position(&json!({"reset": true}), Some(stored)).unwrap(),
            None
        );
        assert_eq!(start_position(&json!({}), None).unwrap(), None);
    }

    #[test]
    fn a_malformed_resume_point_names_the_field() {
        let err = start_position(&json!({ RESUME_KEY: "yesterday" }), None).unwrap_err();
        assert!(err.to_string().contains(RESUME_KEY), "{err}");
    }
}
