//! The human-written text of an event that carries none, derived from its raw payload.
//!
//! Events this host ingests carry the text their plugin extracted. Events other writers
//! stored (drowl's API, its Node.js worker, an import) have only `raw_payload`, as
//! received; without this, keyword extraction would find nothing in them. The rules are
//! shape-based, not source-based, so they hold whoever stored the event:
//!
//! - GitHub's Events API items (`{type, actor, repo, payload}`) and webhook deliveries
//!   (`{action, issue, sender, repository, ...}`): commit messages, issue, pull request and
//!   discussion titles and bodies, comments, reviews, releases, wiki page titles.
//! - Feed entries (RSS 2.0 items, Atom entries, JSON Feed items, as a feed parser or the
//!   API stores them) and articles from dev.to, Zenn or Qiita: title, summary, description,
//!   content and body fields.
//!
//! Only text people wrote counts: a webhook's `repository.description` or a `sender`'s
//! bio would otherwise match every event of that repository or person, so objects that
//! describe accounts and repositories are never read. The text is capped at
//! [`MAX_DERIVED_TEXT_BYTES`], so one huge payload cannot make matching expensive.

use serde_json::Value;

/// Longest text derived from one payload, in bytes.
pub const MAX_DERIVED_TEXT_BYTES: usize = 64 << 10;

/// Fields that hold human-written text, at the payload's top level or in one of the
/// [`TEXT_OBJECTS`].
const TEXT_FIELDS: &[&str] = &[
    "title",
    "summary",
    "description",
    "body",
    "body_markdown",
    "message",
    "content",
    "content_text",
    "content_html",
    "text",
];

/// Objects whose text fields are the event's own (as opposed to `repository`, `sender`,
/// `user`, `organization`, which describe who or where).
const TEXT_OBJECTS: &[&str] = &[
    "issue",
    "pull_request",
    "comment",
    "review",
    "release",
    "discussion",
    "answer",
    "head_commit",
    "entry",
    "item",
    "article",
    "post",
];

/// Arrays whose elements are the event's own text (a push's commits, a wiki edit's pages).
const TEXT_ARRAYS: &[&str] = &["commits", "pages"];

/// The text of a raw payload, or `None` when it holds none of the known fields.
pub fn derive(raw: &Value) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    match raw {
        Value::String(s) => parts.push(s),
        Value::Object(_) => {
            collect(raw, &mut parts);
            // GitHub's Events API wraps what happened in `payload`.
            if let Some(inner) = raw.get("payload").filter(|p| p.is_object()) {
                collect(inner, &mut parts);
            }
        }
        _ => {}
    }
    join(parts)
}

/// Adds the text of one level: its own fields, then those of its text objects and arrays.
fn collect<'a>(v: &'a Value, parts: &mut Vec<&'a str>) {
    fields(v, parts);
    for key in TEXT_OBJECTS {
        if let Some(o) = v.get(key).filter(|o| o.is_object()) {
            fields(o, parts);
        }
    }
    for key in TEXT_ARRAYS {
        for item in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            fields(item, parts);
        }
    }
}

fn fields<'a>(v: &'a Value, parts: &mut Vec<&'a str>) {
    for key in TEXT_FIELDS {
        match v.get(key) {
            Some(Value::String(s)) => parts.push(s),
            // Atom and some feed parsers keep text as `{ "value": ... }` or `{ "#text": ... }`.
            Some(o @ Value::Object(_)) => {
                if let Some(s) = ["value", "#text", "content"]
                    .iter()
                    .find_map(|k| o.get(k).and_then(Value::as_str))
                {
                    parts.push(s);
                }
            }
            _ => {}
        }
    }
}

/// Joins the non-empty parts once each, in order, within [`MAX_DERIVED_TEXT_BYTES`].
fn join(parts: Vec<&str>) -> Option<String> {
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for p in parts.into_iter().map(str::trim) {
        if p.is_empty() || !seen.insert(p) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(p);
        if out.len() >= MAX_DERIVED_TEXT_BYTES {
            let mut end = MAX_DERIVED_TEXT_BYTES;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_events_api_items_give_their_payloads_text() {
        let push = json!({
            "type": "PushEvent", "actor": {"login": "octocat"},
            "repo": {"name": "octocat/Hello-World"},
            "payload": {"commits": [
                {"message": "Port the CLI to TypeScript", "author": {"name": "Mona"}},
                {"message": "Add a React front end"}
            ]}
        });
        assert_eq!(
            derive(&push).as_deref(),
            Some("Port the CLI to TypeScript\n\nAdd a React front end")
        );
        let issue = json!({"type": "IssuesEvent", "payload": {"action": "opened",
            "issue": {"title": "Crash on start", "body": "Rust 1.95, TypeScript 5"}}});
        assert_eq!(
            derive(&issue).as_deref(),
            Some("Crash on start\n\nRust 1.95, TypeScript 5")
        );
        let star = json!({"type": "WatchEvent", "payload": {"action": "started"}});
        assert_eq!(derive(&star), None);
    }

    #[test]
    fn webhook_deliveries_read_what_people_wrote_not_the_repository_or_sender() {
        let comment = json!({
            "action": "created",
            "issue": {"title": "Docs", "body": "See the guide", "user": {"bio": "React dev"}},
            "comment": {"body": "Works with React 19"},
            "repository": {"description": "A TypeScript SDK"},
            "sender": {"login": "hubot", "bio": "I love TypeScript"}
        });
        let text = derive(&comment).unwrap();
        assert_eq!(text, "Docs\n\nSee the guide\n\nWorks with React 19");
        assert!(!text.contains("TypeScript"), "{text}");
    }

    #[test]
    fn feed_entries_and_articles_keep_japanese_text_intact() {
        let zenn = json!({"title": "Rustで WebAssembly を書く",
            "summary": "<p>wasmtime と React の話</p>", "link": "https://zenn.dev/x"});
        assert_eq!(
            derive(&zenn).as_deref(),
            Some("Rustで WebAssembly を書く\n\n<p>wasmtime と React の話</p>")
        );
        let atom = json!({"entry": {"title": {"type": "text", "value": "Release notes"},
            "content": {"value": "TypeScript 6 is out"}}});
        assert_eq!(
            derive(&atom).as_deref(),
            Some("Release notes\n\nTypeScript 6 is out")
        );
        let devto = json!({"title": "Hello", "description": "Hello",
            "body_markdown": "# Hello\nTypeScript tips"});
        assert_eq!(
            derive(&devto).as_deref(),
            Some("Hello\n\n# Hello\nTypeScript tips"),
            "the same text twice is kept once"
        );
    }

    #[test]
    fn a_huge_payload_gives_a_capped_text_on_a_char_boundary() {
        let body = "あ".repeat(40_000);
        let v = json!({"title": "t", "body": body});
        let text = derive(&v).unwrap();
        assert!(text.len() <= MAX_DERIVED_TEXT_BYTES);
        assert!(text.len() > MAX_DERIVED_TEXT_BYTES - 4);
        assert!(text.starts_with("t\n\nあ"));
    }

    #[test]
    fn scalars_and_empty_objects_give_nothing_or_themselves() {
        assert_eq!(derive(&json!(null)), None);
        assert_eq!(derive(&json!(42)), None);
        assert_eq!(derive(&json!({})), None);
        assert_eq!(derive(&json!("plain text")).as_deref(), Some("plain text"));
        assert_eq!(derive(&json!({"title": "   "})), None);
    }
}
