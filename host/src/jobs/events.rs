//! Stored events as job types select them and as plugins see them, shared by the job
//! types that read events back (enrichment, export).

use chrono::{DateTime, Utc};

use super::model::JobFailure;
use crate::bindings::types;
use crate::storage::{EventFilter, StoredEvent};

/// Events handed to a plugin per call.
pub const EVENTS_PER_CALL: u32 = 500;

/// Which events a job covers, from its input.
pub fn filter_from_input(input: &serde_json::Value) -> Result<EventFilter, JobFailure> {
    let s = |k: &str| input.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let time = |k: &str| -> Result<Option<DateTime<Utc>>, JobFailure> {
        s(k).map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| {
                    JobFailure::InvalidJob(format!("input.{k} {v:?} is not RFC 3339: {e}"))
                })
        })
        .transpose()
    };
    let mut ids: Option<Vec<String>> = s("eventId").map(|id| vec![id]);
    if let Some(list) = input.get("eventIds") {
        let list = list.as_array().ok_or_else(|| {
            JobFailure::InvalidJob("input.eventIds must be an array of strings".into())
        })?;
        ids = Some(
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        );
    }
    Ok(EventFilter {
        ids,
        source: s("source"),
        plugin_id: s("sourcePluginId"),
        since: time("since")?,
        until: time("until")?,
    })
}

/// The event as plugins see it.
pub fn to_wit_event(e: &StoredEvent) -> types::StoredEvent {
    types::StoredEvent {
        id: e.id.clone(),
        event: types::Event {
            external_id: e.external_id.clone(),
            source: e.source.clone(),
            event_type: e.event_type.clone(),
            occurred_at: e.occurred_at.to_rfc3339(),
            actor: e.actor.as_ref().map(|(p, u)| types::IdentityObservation {
                platform: p.clone(),
                platform_user_id: u.clone(),
                platform_username: None,
                display_name: None,
                profile_url: None,
                avatar_url: None,
                metadata_json: None,
            }),
            text: e.text.clone(),
            payload: e.raw_payload.to_string(),
        },
    }
}
