//! Pure mapping from GitHub events API items to drowl events and identities.
//!
//! Nothing here talks to the host, so the whole mapping is unit-tested natively.

use drowl_plugin_sdk::{Event, IdentityObservation};
use serde_json::Value;

use crate::event_id::EventId;

/// The drowl source every event of this plugin carries.
pub(crate) const SOURCE: &str = "github";

/// Why an item could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapError(pub(crate) String);

impl std::fmt::Display for MapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// drowl's event type for a GitHub event type (`WatchEvent` → `star`).
///
/// GitHub's names are kept recognisable; the well-known ones get the vocabulary the
/// rest of drowl uses, anything new becomes the snake_case of the name without its
/// `Event` suffix so new GitHub types flow through without a plugin release.
pub(crate) fn event_type(github_type: &str) -> String {
    let known = match github_type {
        "WatchEvent" => "star",
        "ForkEvent" => "fork",
        "PushEvent" => "push",
        "IssuesEvent" => "issue",
        "IssueCommentEvent" => "comment",
        "PullRequestEvent" => "pull_request",
        "PullRequestReviewEvent" => "review",
        "PullRequestReviewCommentEvent" => "review_comment",
        "ReleaseEvent" => "release",
        "CreateEvent" => "create",
        "DeleteEvent" => "delete",
        "PublicEvent" => "public",
        "MemberEvent" => "member",
        "GollumEvent" => "wiki",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    let stem = github_type.strip_suffix("Event").unwrap_or(github_type);
    let mut out = String::with_capacity(stem.len() + 4);
    let mut prev_lower_or_digit = false;
    for c in stem.chars() {
        if c.is_uppercase() {
            if prev_lower_or_digit {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            prev_lower_or_digit = false;
        } else if c.is_alphanumeric() {
            out.push(c);
            prev_lower_or_digit = true;
        } else {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            prev_lower_or_digit = false;
        }
    }
    let out = out.trim_matches('_').to_owned();
    if out.is_empty() {
        "unknown".to_owned()
    } else {
        out
    }
}

/// A string field, or `None` when it is absent, not a string, or only whitespace.
fn text_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// Joins the present parts with a blank line, or `None` when none is present.
fn join(parts: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().flatten().collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("\n\n"))
    }
}

fn title_and_body(payload: &Value, object: &str, title_key: &str) -> Option<String> {
    join([
        text_at(payload, &format!("/{object}/{title_key}")).map(str::to_owned),
        text_at(payload, &format!("/{object}/body")).map(str::to_owned),
    ])
}

/// The human-written text of an event, which keyword extraction reads.
///
/// Only text people wrote counts (commit messages, titles, bodies, comments, the
/// repository description of a create event, wiki page titles and edit summaries);
/// stars, forks, deletions and membership changes carry none.
pub(crate) fn event_text(github_type: &str, payload: &Value) -> Option<String> {
    match github_type {
        "PushEvent" => join(
            payload
                .get("commits")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| text_at(c, "/message").map(str::to_owned)),
        ),
        "IssuesEvent" => title_and_body(payload, "issue", "title"),
        "PullRequestEvent" => title_and_body(payload, "pull_request", "title"),
        "ReleaseEvent" => join([
            text_at(payload, "/release/name")
                .or_else(|| text_at(payload, "/release/tag_name"))
                .map(str::to_owned),
            text_at(payload, "/release/body").map(str::to_owned),
        ]),
        "IssueCommentEvent" | "PullRequestReviewCommentEvent" | "CommitCommentEvent" => {
            text_at(payload, "/comment/body").map(str::to_owned)
        }
        "PullRequestReviewEvent" => text_at(payload, "/review/body").map(str::to_owned),
        "CreateEvent" => text_at(payload, "/description").map(str::to_owned),
        "GollumEvent" => join(
            payload
                .get("pages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    join([
                        text_at(p, "/title").map(str::to_owned),
                        text_at(p, "/summary").map(str::to_owned),
                    ])
                }),
        ),
        "DiscussionEvent" => title_and_body(payload, "discussion", "title"),
        "WatchEvent" | "ForkEvent" | "DeleteEvent" | "PublicEvent" | "MemberEvent" => None,
        // A type this plugin does not know yet: a comment body is the one text GitHub
        // payloads share, so take it when there is one.
        _ => text_at(payload, "/comment/body").map(str::to_owned),
    }
}

/// The account behind `actor`: GitHub's numeric id is the stable key, the login can
/// change and is only the handle.
pub(crate) fn actor_identity(actor: &Value) -> Option<IdentityObservation> {
    let id = match actor.get("id")? {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => EventId::parse(s)?.as_str().to_owned(),
        _ => return None,
    };
    let mut identity = IdentityObservation::new(SOURCE, &id);
    if let Some(login) = text_at(actor, "/login") {
        // Apps act as `name[bot]` and their page lives under /apps/name.
        let profile = match login.strip_suffix("[bot]") {
            Some(app) => format!("https://github.com/apps/{app}"),
            None => format!("https://github.com/{login}"),
        };
        identity = identity.username(login).profile_url(&profile);
    }
    if let Some(avatar) = text_at(actor, "/avatar_url") {
        identity = identity.avatar_url(avatar);
    }
    Some(identity)
}

/// The id of an item, which GitHub sends as a numeric string.
pub(crate) fn item_id(item: &Value) -> Option<EventId> {
    match item.get("id")? {
        Value::String(s) => EventId::parse(s),
        Value::Number(n) => n.as_u64().and_then(|n| EventId::parse(&n.to_string())),
        _ => None,
    }
}

/// Turns one events API item into a drowl event.
///
/// `raw` is the item's JSON exactly as GitHub sent it and becomes the payload, so what
/// drowl stores is byte-for-byte what the platform returned (key order, escapes and
/// number formats included) rather than a re-serialisation of `item`.
pub(crate) fn map_event(item: &Value, raw: &str) -> Result<Event, MapError> {
    let id = item_id(item).ok_or_else(|| MapError("item has no numeric `id`".to_owned()))?;
    let github_type = text_at(item, "/type")
        .ok_or_else(|| MapError(format!("event {} has no `type`", id.as_str())))?;
    let created_at = text_at(item, "/created_at")
        .ok_or_else(|| MapError(format!("event {} has no `created_at`", id.as_str())))?;
    if crate::time::parse_rfc3339(created_at).is_none() {
        return Err(MapError(format!(
            "event {} has a `created_at` that is not RFC 3339: {created_at:?}",
            id.as_str()
        )));
    }
    let mut event = Event::builder(id.as_str(), SOURCE, &event_type(github_type), created_at)
        .payload_raw(raw.to_owned());
    if let Some(actor) = item.get("actor").and_then(actor_identity) {
        event = event.actor(actor);
    }
    let payload = item.get("payload").unwrap_or(&Value::Null);
    if let Some(text) = event_text(github_type, payload) {
        event = event.text(&text);
    }
    Ok(event.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_known_types() {
        for (gh, drowl) in [
            ("WatchEvent", "star"),
            ("ForkEvent", "fork"),
            ("PushEvent", "push"),
            ("IssuesEvent", "issue"),
            ("IssueCommentEvent", "comment"),
            ("PullRequestEvent", "pull_request"),
            ("PullRequestReviewEvent", "review"),
            ("PullRequestReviewCommentEvent", "review_comment"),
            ("ReleaseEvent", "release"),
            ("CreateEvent", "create"),
            ("DeleteEvent", "delete"),
            ("PublicEvent", "public"),
            ("MemberEvent", "member"),
            ("GollumEvent", "wiki"),
        ] {
            assert_eq!(event_type(gh), drowl, "{gh}");
        }
    }

    #[test]
    fn snake_cases_unknown_types() {
        assert_eq!(event_type("CommitCommentEvent"), "commit_comment");
        assert_eq!(
            event_type("PullRequestReviewThreadEvent"),
            "pull_request_review_thread"
        );
        assert_eq!(event_type("SponsorshipEvent"), "sponsorship");
        assert_eq!(event_type("DiscussionEvent"), "discussion");
        assert_eq!(event_type("Event"), "unknown");
        assert_eq!(event_type(""), "unknown");
        assert_eq!(event_type("Future2Event"), "future2");
        assert_eq!(event_type("Weird-ThingEvent"), "weird_thing");
    }

    #[test]
    fn push_text_is_every_commit_message() {
        let payload = json!({"commits": [
            {"message": "Port the parser to Rust"},
            {"message": "Rustで書いたCLIツール"},
            {"message": "   "},
        ]});
        assert_eq!(
            event_text("PushEvent", &payload).as_deref(),
            Some("Port the parser to Rust\n\nRustで書いたCLIツール")
        );
        // Since late 2025 GitHub may omit commits from push payloads.
        assert_eq!(
            event_text("PushEvent", &json!({"ref": "refs/heads/main"})),
            None
        );
    }

    #[test]
    fn titles_and_bodies() {
        let issue = json!({"action": "opened", "issue": {"title": "TypeScriptの型安全な設計", "body": null}});
        assert_eq!(
            event_text("IssuesEvent", &issue).as_deref(),
            Some("TypeScriptの型安全な設計")
        );
        let pr = json!({"pull_request": {"title": "Use React", "body": "Because."}});
        assert_eq!(
            event_text("PullRequestEvent", &pr).as_deref(),
            Some("Use React\n\nBecause.")
        );
        let rel = json!({"release": {"name": null, "tag_name": "v1.0.0", "body": "WebAssembly!"}});
        assert_eq!(
            event_text("ReleaseEvent", &rel).as_deref(),
            Some("v1.0.0\n\nWebAssembly!")
        );
        let create = json!({"ref_type": "repository", "description": "Rustで書いたCLIツール"});
        assert_eq!(
            event_text("CreateEvent", &create).as_deref(),
            Some("Rustで書いたCLIツール")
        );
        let create = json!({"ref_type": "branch", "description": null});
        assert_eq!(event_text("CreateEvent", &create), None);
    }

    #[test]
    fn comments_and_reviews() {
        let c = json!({"comment": {"body": "LGTM"}, "issue": {"title": "ignored"}});
        assert_eq!(event_text("IssueCommentEvent", &c).as_deref(), Some("LGTM"));
        assert_eq!(
            event_text("PullRequestReviewCommentEvent", &c).as_deref(),
            Some("LGTM")
        );
        assert_eq!(
            event_text("CommitCommentEvent", &c).as_deref(),
            Some("LGTM")
        );
        assert_eq!(event_text("SomethingNewEvent", &c).as_deref(), Some("LGTM"));
        let r = json!({"review": {"body": null, "state": "approved"}});
        assert_eq!(event_text("PullRequestReviewEvent", &r), None);
    }

    #[test]
    fn no_text_for_stars_forks_and_the_like() {
        let payload = json!({"action": "started", "forkee": {"description": "a repo"}, "ref": "x"});
        for t in [
            "WatchEvent",
            "ForkEvent",
            "DeleteEvent",
            "PublicEvent",
            "MemberEvent",
        ] {
            assert_eq!(event_text(t, &payload), None, "{t}");
        }
    }

    #[test]
    fn wiki_text() {
        let p = json!({"pages": [
            {"title": "Home", "summary": null},
            {"title": "Getting Started", "summary": "Build the WebAssembly component first"},
        ]});
        assert_eq!(
            event_text("GollumEvent", &p).as_deref(),
            Some("Home\n\nGetting Started\n\nBuild the WebAssembly component first")
        );
    }

    #[test]
    fn actor_to_identity() {
        let actor = json!({
            "id": 583231, "login": "octocat", "display_login": "octocat", "gravatar_id": "",
            "url": "https://api.github.com/users/octocat",
            "avatar_url": "https://avatars.githubusercontent.com/u/583231?"
        });
        let i = actor_identity(&actor).expect("identity");
        assert_eq!(i.platform, "github");
        assert_eq!(i.platform_user_id, "583231");
        assert_eq!(i.platform_username.as_deref(), Some("octocat"));
        assert_eq!(i.profile_url.as_deref(), Some("https://github.com/octocat"));
        assert_eq!(
            i.avatar_url.as_deref(),
            Some("https://avatars.githubusercontent.com/u/583231?")
        );
        assert_eq!(i.display_name, None);

        let bot =
            json!({"id": 49699333, "login": "dependabot[bot]", "display_login": "dependabot"});
        let i = actor_identity(&bot).expect("identity");
        assert_eq!(
            i.profile_url.as_deref(),
            Some("https://github.com/apps/dependabot")
        );
        assert!(actor_identity(&json!({"login": "no-id"})).is_none());
    }

    #[test]
    fn maps_a_whole_item_keeping_the_raw_payload() {
        let raw = r#"{"id":"52917340118","type":"WatchEvent","actor":{"id":583231,"login":"octocat","avatar_url":"https://avatars.githubusercontent.com/u/583231?"},"repo":{"id":1296269,"name":"octocat/Hello-World"},"payload":{"action":"started"},"public":true,"created_at":"2025-11-20T09:14:03Z"}"#;
        let item: Value = serde_json::from_str(raw).expect("json");
        let e = map_event(&item, raw).expect("maps");
        assert_eq!(e.external_id, "52917340118");
        assert_eq!(e.source, "github");
        assert_eq!(e.event_type, "star");
        assert_eq!(e.occurred_at, "2025-11-20T09:14:03Z");
        assert_eq!(e.text, None);
        assert_eq!(e.payload, raw);
        assert_eq!(
            e.actor.map(|a| a.platform_user_id).as_deref(),
            Some("583231")
        );
    }

    #[test]
    fn rejects_items_without_the_essentials() {
        let cases = [
            json!({"type": "WatchEvent", "created_at": "2025-11-20T09:14:03Z"}),
            json!({"id": "x1", "type": "WatchEvent", "created_at": "2025-11-20T09:14:03Z"}),
            json!({"id": "1", "created_at": "2025-11-20T09:14:03Z"}),
            json!({"id": "1", "type": "WatchEvent"}),
            json!({"id": "1", "type": "WatchEvent", "created_at": "yesterday"}),
        ];
        for item in cases {
            assert!(map_event(&item, &item.to_string()).is_err(), "{item}");
        }
    }
}
