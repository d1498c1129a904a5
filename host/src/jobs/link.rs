//! `identity_resolution` jobs that link two identities a person chose: drowl's API
//! enqueues `{identityId1, identityId2, confidence}` when someone links two accounts by
//! hand. No plugin runs: the host validates the request and writes the link through
//! [`EventStore::link_identities`](crate::storage::EventStore::link_identities), which
//! keeps drowl's rules (ordered pair, one active link per pair, `user_manual`).
//!
//! A malformed request fails for good with one line naming the field, since no retry can
//! mend it; so does an id with no `identities` row (the storage layer names it).

use serde_json::{Value, json};

use super::model::{CompletedJob, FailedJob, JobFailure, JobRequest};
use crate::storage::{LINK_CONFIDENCES, Storage};

/// The input fields naming the two identities.
const ID_FIELDS: [&str; 2] = ["identityId1", "identityId2"];

/// Whether `job` asks for a link between two identities (it names either id field).
pub(crate) fn is_link_request(job: &JobRequest) -> bool {
    ID_FIELDS.iter().any(|f| job.input.get(f).is_some())
}

/// One required, non-empty string field of the input.
fn text_field<'a>(job: &'a JobRequest, field: &str, what: &str) -> Result<&'a str, JobFailure> {
    match job.input.get(field) {
        None | Some(Value::Null) => Err(JobFailure::InvalidJob(format!(
            "identity link jobs need `input.{field}` ({what})"
        ))),
        Some(Value::String(s)) if s.trim().is_empty() => Err(JobFailure::InvalidJob(format!(
            "`input.{field}` is empty; it must be {what}"
        ))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(JobFailure::InvalidJob(format!(
            "`input.{field}` must be a string ({what}), not {other}"
        ))),
    }
}

/// The validated request: two different ids and a confidence drowl knows.
fn request(job: &JobRequest) -> Result<(&str, &str, &str), JobFailure> {
    let a = text_field(job, ID_FIELDS[0], "an `identities.id`")?;
    let b = text_field(job, ID_FIELDS[1], "an `identities.id`")?;
    let allowed = LINK_CONFIDENCES.join(", ");
    let confidence = text_field(job, "confidence", &format!("one of {allowed}"))?;
    if a == b {
        return Err(JobFailure::InvalidJob(format!(
            "`input.identityId1` and `input.identityId2` are the same identity `{a}`; \
             an identity cannot be linked to itself"
        )));
    }
    if !LINK_CONFIDENCES.contains(&confidence) {
        return Err(JobFailure::InvalidJob(format!(
            "`input.confidence` `{confidence}` is not one of {allowed}"
        )));
    }
    Ok((a, b, confidence))
}

/// Validates the request and writes the link. The output names the pair as stored
/// (ordered) and whether the link was `created` or an active one `updated`.
pub(crate) async fn run(storage: &Storage, job: &JobRequest) -> Result<CompletedJob, FailedJob> {
    let (a, b, confidence) = request(job)?;
    let reason = format!("linked by hand (job {}, {})", job.id, job.name);
    let outcome = storage
        .events
        .link_identities(a, b, confidence, &reason)
        .await
        .map_err(JobFailure::from)?;
    Ok(CompletedJob {
        output: json!({
            "linked": true,
            "identityId1": outcome.identity_id_1,
            "identityId2": outcome.identity_id_2,
            "confidence": confidence,
            "outcome": if outcome.created { "created" } else { "updated" },
        }),
        report: None,
        continuation: None,
    })
}
