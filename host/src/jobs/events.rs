//! Stored events as job types select them and as plugins see them, shared by the job
//! types that read events back (enrichment, export).

use chrono::{DateTime, Utc};

use super::model::JobFailure;
use crate::bindings::types;
use crate::storage::{EventFilter, StoredEvent};

/// Events handed to a plugin per call.
pub const EVENTS_PER_CALL: u32 = 500;

/// Which events a job covers, from its input.
///
/// A field that is present but of the wrong type is the job's error, naming the field: a
/// numeric `eventId` read as "no id" would turn a job about one event into a job about
/// every event.
pub fn filter_from_input(input: &serde_json::Value) -> Result<EventFilter, JobFailure> {
    let s = |k: &str| -> Result<Option<String>, JobFailure> {
        match input.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(v)) if !v.trim().is_empty() => Ok(Some(v.clone())),
            Some(v) => Err(JobFailure::InvalidJob(format!(
                "input.{k} must be a non-empty string, not {v}"
            ))),
        }
    };
    let time = |k: &str| -> Result<Option<DateTime<Utc>>, JobFailure> {
        s(k)?
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| {
                        JobFailure::InvalidJob(format!("input.{k} {v:?} is not RFC 3339: {e}"))
                    })
            })
            .transpose()
    };
    let mut ids: Option<Vec<String>> = s("eventId")?.map(|id| vec![id]);
    if let Some(list) = input.get("eventIds").filter(|v| !v.is_null()) {
        let list = list.as_array().ok_or_else(|| {
            JobFailure::InvalidJob("input.eventIds must be an array of strings".into())
        })?;
        let mut all = ids.take().unwrap_or_default();
        for (i, v) in list.iter().enumerate() {
            match v.as_str().filter(|v| !v.trim().is_empty()) {
                Some(id) => all.push(id.to_owned()),
                None => {
                    return Err(JobFailure::InvalidJob(format!(
                        "input.eventIds[{i}] must be a non-empty string, not {v}"
                    )));
                }
            }
        }
        ids = Some(all);
    }
    let (since, until) = (time("since")?, time("until")?);
    if let (Some(a), Some(b)) = (since, until)
        && a > b
    {
        return Err(JobFailure::InvalidJob(format!(
            "input.since ({}) is after input.until ({}); swap them",
            a.to_rfc3339(),
            b.to_rfc3339()
        )));
    }
    // `eventType` (one) and `eventTypes` (several) select by type together.
    let mut event_types: Option<Vec<String>> = s("eventType")?.map(|t| vec![t]);
    if let Some(list) = input.get("eventTypes").filter(|v| !v.is_null()) {
        let list = list.as_array().ok_or_else(|| {
            JobFailure::InvalidJob("input.eventTypes must be an array of strings".into())
        })?;
        let mut all = event_types.take().unwrap_or_default();
        for (i, v) in list.iter().enumerate() {
            match v.as_str().filter(|v| !v.trim().is_empty()) {
                Some(t) => all.push(t.to_owned()),
                None => {
                    return Err(JobFailure::InvalidJob(format!(
                        "input.eventTypes[{i}] must be a non-empty string, not {v}"
                    )));
                }
            }
        }
        event_types = Some(all);
    }
    Ok(EventFilter {
        ids,
        source: s("source")?,
        plugin_id: s("sourcePluginId")?,
        since,
        until,
        event_types,
        keyword: s("keyword")?,
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
            // Events other writers stored (drowl's API) carry no extracted text: the
            // plugin gets what people wrote in the raw payload instead.
            text: e
                .text
                .clone()
                .filter(|t| !t.trim().is_empty())
                .or_else(|| super::text::derive(&e.raw_payload)),
            payload: e.raw_payload.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(input: serde_json::Value) -> String {
        filter_from_input(&input).unwrap_err().to_string()
    }

    #[test]
    fn drowls_payloads_select_their_events() {
        let f = filter_from_input(&json!({"eventId": "e1", "keywords": ["TypeScript"]})).unwrap();
        assert_eq!(f.ids, Some(vec!["e1".to_owned()]));
        let f =
            filter_from_input(&json!({"eventIds": ["a", "b"], "since": "2024-01-01T00:00:00Z"}))
                .unwrap();
        assert_eq!(f.ids, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(f.since.is_some());
        assert_eq!(
            filter_from_input(&json!({})).unwrap(),
            EventFilter::default()
        );
    }

    #[test]
    fn mistyped_fields_and_reversed_ranges_name_the_field() {
        assert!(err(json!({"eventId": 42})).contains("input.eventId must be a non-empty string"));
        assert!(err(json!({"eventId": ""})).contains("input.eventId"));
        assert!(err(json!({"eventIds": "a"})).contains("input.eventIds must be an array"));
        assert!(err(json!({"eventIds": ["a", 7]})).contains("input.eventIds[1]"));
        assert!(err(json!({"source": ["github"]})).contains("input.source"));
        assert!(
            err(json!({"since": "yesterday"}))
                .contains("input.since \"yesterday\" is not RFC 3339")
        );
        let e = err(json!({"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}));
        assert!(
            e.contains("input.since") && e.contains("is after input.until"),
            "{e}"
        );
    }
}
