//! Pure mapping from GitHub webhook deliveries to drowl events.
//!
//! The host has already checked the delivery's `X-Hub-Signature-256` and stored it; this
//! module only reads what GitHub sent, so it is unit-tested natively (and against the
//! real example payloads of `@octokit/webhooks-examples` in `tests/webhooks.rs`).
//!
//! # What becomes an event
//!
//! The same activity gets the event type, text and actor the events API path gives it
//! (see `mapping`), so a report does not care which way an event arrived. Actions are
//! mapped where the events API reports the same activity; the rest (administrative
//! actions such as `pinned` or `locked`, drafts, deletions) and every other kind of
//! delivery (`ping`, ...) give no event: the delivery stays stored as received.
//!
//! | `X-GitHub-Event` | actions                                                 | event type     |
//! |------------------|---------------------------------------------------------|----------------|
//! | `push`           | (none; not a ref deletion, `deleted: true`)             | `push`         |
//! | `issues`         | opened, edited, closed, reopened, assigned, unassigned, labeled, unlabeled | `issue` |
//! | `issue_comment`  | created, edited                                         | `comment`      |
//! | `pull_request`   | opened, edited, closed, reopened, assigned, unassigned, labeled, unlabeled, review_requested, review_request_removed, synchronize | `pull_request` |
//! | `release`        | published                                               | `release`      |
//! | `star`           | created / deleted                                       | `star` / `unstar` |
//! | `watch`          | started (GitHub's older name for starring)              | `star`         |
//! | `fork`           | (none)                                                  | `fork`         |
//!
//! # External ids
//!
//! An event's `external-id` is built from the payload's own ids, never from the delivery
//! id: GitHub's "Redeliver" and a second hook on the organisation send the same activity
//! under another delivery id, and those must be stored once. Every id starts with the
//! webhook event's name and a colon, so it can never equal an events API id (digits only).
//! Timestamps in ids are the event's `occurred-at`, in UTC with a `Z`.
//!
//! | event           | `external-id`                                                      |
//! |-----------------|--------------------------------------------------------------------|
//! | `push`          | `push:{repository.id}:{before}..{after}:{ref}` (cut at 256 bytes)  |
//! | `issues`        | `issues:{issue.id}:{action}[:{detail}]:{occurred-at}`              |
//! | `pull_request`  | `pull_request:{pull_request.id}:{action}[:{detail}]:{occurred-at}` |
//! | `issue_comment` | `issue_comment:{comment.id}` (created), `issue_comment:{comment.id}:edited:{comment.updated_at}` |
//! | `release`       | `release:{release.id}:published`                                   |
//! | `star`, `watch` | `star:{repository.id}:{sender.id}:{created\|deleted}:{occurred-at}` |
//! | `fork`          | `fork:{forkee.id}`                                                 |
//!
//! `detail` tells apart actions that share a timestamp: the label's id for
//! (un)labeled, the assignee's id for (un)assigned, the reviewer's id (`team-{id}` for a
//! team) for review requests, and the new head sha for `synchronize`. A `watch` delivery
//! has no time of its own, so it takes `repository.updated_at`, which the star bumps; when
//! that equals the `star` delivery's `starred_at` (as in GitHub's own examples) the two
//! deliveries GitHub sends for one star are stored as one event.
//!
//! The events API path keeps its own ids (GitHub's event ids, which deliveries do not
//! carry), so the same activity seen both ways is two events. The push, comment, release
//! and fork ids use only what the events API payload also has (`repository_id`, `before`,
//! `head`, `ref`; `comment.id`; `release.id`; `forkee.id`), so that path could adopt them
//! later, at the cost of re-keying the events it has already stored.
//!
//! # occurred-at
//!
//! The payload's own time: `repository.pushed_at` (else `head_commit.timestamp`) for a
//! push; `created_at` for an opened issue or pull request, `closed_at` for a closed one and
//! `updated_at` for any other action; the comment's `created_at` (`updated_at` when
//! edited); the release's `published_at`; `starred_at` for a star (else
//! `repository.updated_at`); the fork's `created_at`. Never the clock.

use chrono::{DateTime, SecondsFormat, Utc};
use drowl_plugin_sdk::webhook::{Delivery, DeliveryResult};
use drowl_plugin_sdk::{Event, JobError};
use serde_json::Value;

use crate::mapping::{self, SOURCE};

/// The longest `external-id` the host stores.
const MAX_EXTERNAL_ID_BYTES: usize = 256;

/// Turns one verified GitHub delivery into drowl events (at most one per delivery).
///
/// A kind of delivery or an action this plugin does not map gives no events; a body that
/// is not JSON, or lacks what the id or the time of its event is built from, fails
/// `permanent` naming what is missing, since a retry would read the same bytes.
pub fn map_delivery(delivery: &Delivery) -> Result<DeliveryResult, JobError> {
    let fail = |what: String| {
        JobError::permanent(format!("GitHub delivery {}: {what}", delivery.delivery_id))
    };
    let Some(kind) = delivery
        .event
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        return Err(fail(
            "has no X-GitHub-Event header, so what it reports is unknown; GitHub sends one \
             with every delivery, so check what posts to this endpoint"
                .to_owned(),
        ));
    };
    let kind = kind.to_ascii_lowercase();
    if !MAPPED.contains(&kind.as_str()) {
        return Ok(DeliveryResult {
            events: Vec::new(),
            identities: Vec::new(),
        });
    }
    let raw = body_json(delivery).map_err(|e| fail(format!("{kind} {e}")))?;
    let body: Value = serde_json::from_str(&raw).map_err(|e| {
        fail(format!(
            "{kind} body is not JSON ({e}); set the webhook's content type to application/json"
        ))
    })?;
    if !body.is_object() {
        return Err(fail(format!("{kind} body is not a JSON object")));
    }
    let event = map_body(&kind, &body, raw).map_err(|e| fail(format!("{kind} {e}")))?;
    Ok(DeliveryResult {
        events: event.into_iter().collect(),
        identities: Vec::new(),
    })
}

/// The `X-GitHub-Event` values this plugin maps.
const MAPPED: [&str; 8] = [
    "push",
    "issues",
    "issue_comment",
    "pull_request",
    "release",
    "star",
    "watch",
    "fork",
];

/// The JSON text of the body. A hook whose content type is
/// `application/x-www-form-urlencoded` sends the JSON in the `payload` form field.
fn body_json(delivery: &Delivery) -> Result<String, String> {
    let form = delivery.header("content-type").is_some_and(|t| {
        t.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if form {
        return url::form_urlencoded::parse(&delivery.body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| "form body has no `payload` field".to_owned());
    }
    String::from_utf8(delivery.body.clone())
        .map_err(|_| "body is not JSON (not UTF-8 text)".to_owned())
}

/// The event for a body of webhook event `kind` (one of [`MAPPED`]), `None` for an action
/// it does not map. `raw` is the body's JSON text, kept as the payload.
fn map_body(kind: &str, body: &Value, raw: String) -> Result<Option<Event>, String> {
    let Some(m) = (match kind {
        "push" => push(body)?,
        "issues" => issue_or_pull_request(body, "issue", "issue", ISSUE_ACTIONS)?,
        "pull_request" => {
            issue_or_pull_request(body, "pull_request", "pull_request", PULL_REQUEST_ACTIONS)?
        }
        "issue_comment" => issue_comment(body)?,
        "release" => release(body)?,
        "star" | "watch" => star(kind, body)?,
        "fork" => fork(body)?,
        _ => None,
    }) else {
        return Ok(None);
    };
    let mut event = Event::builder(
        &cap_bytes(m.external_id, MAX_EXTERNAL_ID_BYTES),
        SOURCE,
        m.event_type,
        &m.occurred_at,
    )
    .payload_raw(raw);
    if let Some(actor) = body.get("sender").and_then(mapping::actor_identity) {
        event = event.actor(actor);
    }
    if let Some(text) = mapping::event_text(m.events_api_type, body) {
        event = event.text(&text);
    }
    Ok(Some(event.build()))
}

/// What one delivery maps to, before it becomes an [`Event`].
struct Mapped {
    external_id: String,
    event_type: &'static str,
    occurred_at: String,
    /// The events API type of the same activity, whose text extraction applies: webhook
    /// bodies have the same shape as the events API's `payload`.
    events_api_type: &'static str,
}

fn push(body: &Value) -> Result<Option<Mapped>, String> {
    // A push that only deletes a branch or tag pushed nothing: the events API reports it
    // as a `DeleteEvent`, and GitHub sends a `delete` delivery for it too.
    if body.get("deleted") == Some(&Value::Bool(true)) {
        return Ok(None);
    }
    let repo = id_at(body, "repository.id")?;
    let git_ref = str_at(body, "ref")?;
    let before = str_at(body, "before")?;
    let after = str_at(body, "after")?;
    let occurred_at = match time_at(body, "repository.pushed_at")? {
        Some(t) => t,
        None => time_at(body, "head_commit.timestamp")?.ok_or(
            "lacks `repository.pushed_at` and `head_commit.timestamp`, so when it happened is unknown",
        )?,
    };
    Ok(Some(Mapped {
        external_id: format!("push:{repo}:{before}..{after}:{git_ref}"),
        event_type: "push",
        occurred_at,
        events_api_type: "PushEvent",
    }))
}

/// `issues` actions mapped: the ones the events API reports as an `IssuesEvent`.
const ISSUE_ACTIONS: &[&str] = &[
    "opened",
    "edited",
    "closed",
    "reopened",
    "assigned",
    "unassigned",
    "labeled",
    "unlabeled",
];

/// `pull_request` actions mapped: the ones the events API reports as a
/// `PullRequestEvent`, and `synchronize` (new commits pushed to it).
const PULL_REQUEST_ACTIONS: &[&str] = &[
    "opened",
    "edited",
    "closed",
    "reopened",
    "assigned",
    "unassigned",
    "labeled",
    "unlabeled",
    "review_requested",
    "review_request_removed",
    "synchronize",
];

/// An `issues` or `pull_request` delivery; `object` is the key of the issue or pull
/// request in the body.
fn issue_or_pull_request(
    body: &Value,
    object: &'static str,
    event_type: &'static str,
    actions: &[&str],
) -> Result<Option<Mapped>, String> {
    let action = str_at(body, "action")?;
    if !actions.contains(&action) {
        return Ok(None);
    }
    let id = id_at(body, &format!("{object}.id"))?;
    let at = |field: &str| time_at(body, &format!("{object}.{field}"));
    let occurred_at = match action {
        "opened" => at("created_at")?,
        "closed" => match at("closed_at")? {
            Some(t) => Some(t),
            None => at("updated_at")?,
        },
        _ => at("updated_at")?,
    }
    .ok_or_else(|| {
        let field = match action {
            "opened" => "created_at",
            _ => "updated_at",
        };
        format!("lacks `{object}.{field}`, so when it happened is unknown")
    })?;
    let detail = match action {
        "labeled" | "unlabeled" => opt_id_at(body, "label.id")?,
        "assigned" | "unassigned" => opt_id_at(body, "assignee.id")?,
        "review_requested" | "review_request_removed" => {
            match opt_id_at(body, "requested_reviewer.id")? {
                Some(user) => Some(user),
                None => opt_id_at(body, "requested_team.id")?.map(|team| format!("team-{team}")),
            }
        }
        "synchronize" => Some(str_at(body, "after")?.to_owned()),
        _ => None,
    };
    let detail = detail.map(|d| format!(":{d}")).unwrap_or_default();
    let kind = if object == "issue" {
        "issues"
    } else {
        "pull_request"
    };
    Ok(Some(Mapped {
        external_id: format!("{kind}:{id}:{action}{detail}:{occurred_at}"),
        event_type,
        occurred_at,
        events_api_type: if object == "issue" {
            "IssuesEvent"
        } else {
            "PullRequestEvent"
        },
    }))
}

fn issue_comment(body: &Value) -> Result<Option<Mapped>, String> {
    let action = str_at(body, "action")?;
    let (external_id, occurred_at) = match action {
        "created" => {
            let id = id_at(body, "comment.id")?;
            let at = required_time(body, "comment.created_at")?;
            (format!("issue_comment:{id}"), at)
        }
        "edited" => {
            let id = id_at(body, "comment.id")?;
            let at = required_time(body, "comment.updated_at")?;
            (format!("issue_comment:{id}:edited:{at}"), at)
        }
        _ => return Ok(None),
    };
    Ok(Some(Mapped {
        external_id,
        event_type: "comment",
        occurred_at,
        events_api_type: "IssueCommentEvent",
    }))
}

fn release(body: &Value) -> Result<Option<Mapped>, String> {
    if str_at(body, "action")? != "published" {
        return Ok(None);
    }
    let id = id_at(body, "release.id")?;
    let occurred_at = match time_at(body, "release.published_at")? {
        Some(t) => t,
        None => required_time(body, "release.created_at")?,
    };
    Ok(Some(Mapped {
        external_id: format!("release:{id}:published"),
        event_type: "release",
        occurred_at,
        events_api_type: "ReleaseEvent",
    }))
}

/// A `star` (created or deleted) or `watch` (started) delivery.
fn star(kind: &str, body: &Value) -> Result<Option<Mapped>, String> {
    let (action, event_type) = match (kind, str_at(body, "action")?) {
        ("star", "created") | ("watch", "started") => ("created", "star"),
        ("star", "deleted") => ("deleted", "unstar"),
        _ => return Ok(None),
    };
    let repo = id_at(body, "repository.id")?;
    let sender = id_at(body, "sender.id")?;
    let starred_at = if kind == "star" {
        time_at(body, "starred_at")?
    } else {
        None
    };
    let occurred_at = match starred_at {
        Some(t) => t,
        None => required_time(body, "repository.updated_at")?,
    };
    Ok(Some(Mapped {
        external_id: format!("star:{repo}:{sender}:{action}:{occurred_at}"),
        event_type,
        occurred_at,
        events_api_type: "WatchEvent",
    }))
}

fn fork(body: &Value) -> Result<Option<Mapped>, String> {
    let id = id_at(body, "forkee.id")?;
    Ok(Some(Mapped {
        external_id: format!("fork:{id}"),
        event_type: "fork",
        occurred_at: required_time(body, "forkee.created_at")?,
        events_api_type: "ForkEvent",
    }))
}

/// The value at a dotted path (`repository.id`).
fn at<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(body, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// A non-empty string at `path`.
fn str_at<'a>(body: &'a Value, path: &str) -> Result<&'a str, String> {
    at(body, path)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("lacks `{path}` (a non-empty string)"))
}

/// A GitHub numeric id at `path` (a number, or digits in a string), `None` when absent.
fn opt_id_at(body: &Value, path: &str) -> Result<Option<String>, String> {
    match at(body, path) {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(s.clone()))
        }
        Some(other) => Err(format!("has a `{path}` that is not a numeric id: {other}")),
    }
}

/// A GitHub numeric id at `path`.
fn id_at(body: &Value, path: &str) -> Result<String, String> {
    opt_id_at(body, path)?.ok_or_else(|| format!("lacks `{path}` (a numeric id)"))
}

/// The timestamp at `path` in UTC (`2019-05-15T15:20:40Z`), `None` when absent. GitHub
/// writes most as RFC 3339 text, and a push's `repository.pushed_at` as Unix seconds.
fn time_at(body: &Value, path: &str) -> Result<Option<String>, String> {
    let t = match at(body, path) {
        None => return Ok(None),
        Some(Value::String(s)) => crate::time::parse_rfc3339(s),
        Some(Value::Number(n)) => n.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)),
        Some(_) => None,
    };
    match t {
        Some(t) => Ok(Some(canonical(t))),
        None => Err(format!(
            "has a `{path}` that is neither RFC 3339 nor Unix seconds: {}",
            at(body, path).map(Value::to_string).unwrap_or_default()
        )),
    }
}

fn required_time(body: &Value, path: &str) -> Result<String, String> {
    time_at(body, path)?.ok_or_else(|| format!("lacks `{path}`, so when it happened is unknown"))
}

/// One spelling per instant, so ids built from different fields of the same time agree.
fn canonical(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cap_bytes(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use drowl_plugin_sdk::JobContext;
    use serde_json::json;

    fn delivery(event: Option<&str>, body: &[u8]) -> Delivery {
        Delivery {
            job: JobContext {
                job_id: "1".into(),
                job_type: "webhook".into(),
                name: "github".into(),
                attempt: 1,
                max_attempts: 3,
                input: "{}".into(),
                idempotency_key: "k".into(),
            },
            delivery_id: "d-1".into(),
            event: event.map(str::to_owned),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_vec(),
            config: Vec::new(),
        }
    }

    fn permanent(r: Result<DeliveryResult, JobError>) -> String {
        match r {
            Err(JobError::Permanent(m)) => m,
            Err(e) => panic!("not permanent: {e:?}"),
            Ok(r) => panic!("mapped: {:?}", r.events),
        }
    }

    fn fork_body() -> Value {
        json!({
            "forkee": {"id": 7, "created_at": "2024-03-01T10:00:00+09:00"},
            "repository": {"id": 1},
            "sender": {"id": 42, "login": "octocat"}
        })
    }

    #[test]
    fn a_fork_becomes_one_event_in_utc() {
        let raw = fork_body().to_string();
        let r = map_delivery(&delivery(Some("fork"), raw.as_bytes())).expect("maps");
        let [e] = r.events.as_slice() else {
            panic!("{:?}", r.events)
        };
        assert_eq!(e.external_id, "fork:7");
        assert_eq!(e.event_type, "fork");
        assert_eq!(e.source, "github");
        assert_eq!(e.occurred_at, "2024-03-01T01:00:00Z");
        assert_eq!(e.payload, raw);
        assert_eq!(e.text, None);
        let actor = e.actor.as_ref().expect("actor");
        assert_eq!(actor.platform_user_id, "42");
        assert_eq!(
            actor.profile_url.as_deref(),
            Some("https://github.com/octocat")
        );
        assert!(r.identities.is_empty());
    }

    #[test]
    fn unmapped_kinds_and_actions_give_nothing() {
        for (event, body) in [
            ("ping", &b"{\"zen\": \"Keep it logically awesome.\"}"[..]),
            ("ping", b"not even json"),
            ("check_run", b"{}"),
            ("issues", b"{\"action\": \"pinned\", \"issue\": {}}"),
            ("release", b"{\"action\": \"created\"}"),
            ("issue_comment", b"{\"action\": \"deleted\"}"),
            ("watch", b"{\"action\": \"stopped\"}"),
        ] {
            let r = map_delivery(&delivery(Some(event), body)).expect(event);
            assert!(r.events.is_empty(), "{event}: {:?}", r.events);
        }
    }

    #[test]
    fn bad_bodies_fail_permanently_naming_what_is_wrong() {
        let m = permanent(map_delivery(&delivery(Some("push"), b"<html>")));
        assert!(
            m.contains("d-1") && m.contains("push body is not JSON"),
            "{m}"
        );
        let m = permanent(map_delivery(&delivery(Some("fork"), b"[1]")));
        assert!(m.contains("not a JSON object"), "{m}");
        let m = permanent(map_delivery(&delivery(Some("fork"), &[0xff, 0xfe])));
        assert!(m.contains("not UTF-8"), "{m}");
        let m = permanent(map_delivery(&delivery(None, b"{}")));
        assert!(m.contains("X-GitHub-Event"), "{m}");

        let mut body = fork_body();
        body["forkee"]["id"] = json!("seven");
        let m = permanent(map_delivery(&delivery(
            Some("fork"),
            body.to_string().as_bytes(),
        )));
        assert!(m.contains("`forkee.id`"), "{m}");
        let mut body = fork_body();
        body["forkee"]["created_at"] = json!("last week");
        let m = permanent(map_delivery(&delivery(
            Some("fork"),
            body.to_string().as_bytes(),
        )));
        assert!(m.contains("`forkee.created_at`"), "{m}");
        let m = permanent(map_delivery(&delivery(
            Some("issues"),
            b"{\"issue\": {\"id\": 1}}",
        )));
        assert!(m.contains("`action`"), "{m}");
    }

    #[test]
    fn form_encoded_deliveries_carry_the_json_in_payload() {
        let raw = fork_body().to_string();
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &raw)
            .finish();
        let mut d = delivery(Some("fork"), form.as_bytes());
        d.headers = vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )];
        let r = map_delivery(&d).expect("maps");
        assert_eq!(r.events[0].external_id, "fork:7");
        assert_eq!(r.events[0].payload, raw);

        d.body = b"other=1".to_vec();
        assert!(permanent(map_delivery(&d)).contains("`payload`"));
    }

    #[test]
    fn push_ids_stay_within_the_hosts_limit() {
        let body = json!({
            "ref": format!("refs/heads/{}", "é".repeat(200)),
            "before": "a".repeat(40), "after": "b".repeat(40),
            "repository": {"id": 1, "pushed_at": 1_557_933_657},
            "commits": []
        });
        let r = map_delivery(&delivery(Some("push"), body.to_string().as_bytes())).expect("maps");
        let id = &r.events[0].external_id;
        assert!(id.len() <= MAX_EXTERNAL_ID_BYTES, "{}", id.len());
        assert!(id.starts_with(&format!(
            "push:1:{}..{}:refs/heads/é",
            "a".repeat(40),
            "b".repeat(40)
        )));
        assert_eq!(r.events[0].occurred_at, "2019-05-15T15:20:57Z");
        assert_eq!(r.events[0].text, None);
    }

    #[test]
    fn review_requests_name_the_reviewer_or_team() {
        let body = |reviewer: Value| {
            let mut b = json!({
                "action": "review_requested",
                "pull_request": {"id": 5, "updated_at": "2024-01-01T00:00:00Z", "title": "T"},
            });
            b.as_object_mut()
                .expect("object")
                .extend(reviewer.as_object().expect("object").clone());
            b.to_string()
        };
        let user = body(json!({"requested_reviewer": {"id": 9}}));
        let team = body(json!({"requested_team": {"id": 3}}));
        let id = |raw: &str| {
            map_delivery(&delivery(Some("pull_request"), raw.as_bytes()))
                .expect("maps")
                .events[0]
                .external_id
                .clone()
        };
        assert_eq!(
            id(&user),
            "pull_request:5:review_requested:9:2024-01-01T00:00:00Z"
        );
        assert_eq!(
            id(&team),
            "pull_request:5:review_requested:team-3:2024-01-01T00:00:00Z"
        );
    }
}
