//! Pure mapping from feed-rs entries to drowl events and identities.
//!
//! Nothing here talks to the host, so the whole mapping is unit-tested natively.

use chrono::{DateTime, SecondsFormat, Utc};
use drowl_plugin_sdk::{Event, IdentityObservation};
use feed_rs::model::{Entry, Feed, FeedType, Person, Text};
use serde_json::{Value, json};
use url::Url;

use crate::cursor::digest;
use crate::settings::GENERIC_SOURCE;
use crate::text::plain;

/// drowl's event type for a feed entry: an article on dev.to, Zenn or Qiita, a post on
/// a blog — one word for all, since a feed does not say which.
pub(crate) const EVENT_TYPE: &str = "article";

/// The host refuses longer external ids.
const MAX_EXTERNAL_ID_BYTES: usize = 256;

/// What the mapping needs to know about the feed an entry came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedContext<'a> {
    /// The feed's URL as the job names it.
    pub(crate) url: &'a Url,
    /// The drowl source of its entries (see `settings::source_for`).
    pub(crate) source: &'a str,
    /// The parsed feed (its title, type and authors).
    pub(crate) feed: &'a Feed,
    /// When the entry has no date: the time of the response.
    pub(crate) fetched_at: DateTime<Utc>,
}

/// The entry's external id: its `<guid>`/`<id>`/`id` when that is a URI (`https:`,
/// `tag:`, `urn:` — unique by construction), otherwise that id qualified by the feed's
/// URL, since a bare `<guid>42</guid>` is unique only within its feed. feed-rs gives an
/// entry without an id its first link (see `parse`). Ids over the host's limit become
/// a digest of themselves.
pub(crate) fn external_id(entry: &Entry, feed_url: &Url) -> String {
    let id = entry.id.trim();
    let id = if is_uri(id) {
        id.to_owned()
    } else {
        format!("{feed_url}#{id}")
    };
    if id.len() <= MAX_EXTERNAL_ID_BYTES {
        id
    } else {
        format!(
            "{}#digest-{}",
            feed_url.origin().ascii_serialization(),
            digest(&id)
        )
    }
}

fn is_uri(id: &str) -> bool {
    !id.contains(char::is_whitespace) && Url::parse(id).is_ok()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn text_plain(t: Option<&Text>) -> Option<String> {
    t.and_then(|t| plain(&t.content))
}

/// The human-written text keyword extraction reads: the title, then the content (or,
/// when the feed carries none, the summary), as plain text.
pub(crate) fn entry_text(entry: &Entry) -> Option<String> {
    let body = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .and_then(plain)
        .or_else(|| text_plain(entry.summary.as_ref()));
    let parts: Vec<String> = [text_plain(entry.title.as_ref()), body]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// The entry's own link to the article: `rel="alternate"` or no rel, else the first.
fn entry_link(entry: &Entry) -> Option<&str> {
    entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or_else(|| entry.links.first())
        .map(|l| l.href.as_str())
}

/// The account handle in an article URL on dev.to (`/ben/slug`), Zenn
/// (`/catnose/articles/slug`) or Qiita (`/user/items/id`): the first path segment.
fn platform_handle(link: &str, feed_url: &Url) -> Option<String> {
    let link = Url::parse(link).ok()?;
    if link.host_str()? != feed_url.host_str()? {
        return None;
    }
    let first = link.path_segments()?.next()?.trim_start_matches('@');
    let ok = !first.is_empty()
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| first.to_owned())
}

/// The author as an identity on the entry's source.
///
/// On dev.to, Zenn and Qiita the account's handle is the stable key (what a connector
/// of that platform would record), taken from the article's URL, with the feed's author
/// name as the display name. For other feeds there is no platform id: the author's URI
/// (Atom `<uri>`, JSON Feed `url`) is the key when given, else the e-mail, else the name
/// qualified by the feed's host (`blog.example.com/Jane Doe`), since a bare name is only
/// meaningful within one blog.
pub(crate) fn author_identity(entry: &Entry, ctx: &FeedContext<'_>) -> Option<IdentityObservation> {
    let author: Option<&Person> = entry.authors.first().or(ctx.feed.authors.first());
    let name = author
        .and_then(|a| a.name.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let uri = author
        .and_then(|a| a.uri.as_deref())
        .map(str::trim)
        .filter(|u| is_uri(u));
    let mut identity = if ctx.source == GENERIC_SOURCE {
        let email = author
            .and_then(|a| a.email.as_deref())
            .map(str::trim)
            .filter(|e| !e.is_empty());
        let host = ctx.url.host_str().unwrap_or_default();
        let key = uri
            .map(str::to_owned)
            .or_else(|| email.map(|e| format!("mailto:{e}")))
            .or_else(|| name.map(|n| format!("{host}/{n}")))?;
        let mut i = IdentityObservation::new(ctx.source, &key);
        if let Some(uri) = uri.filter(|u| u.starts_with("http")) {
            i = i.profile_url(uri);
        }
        i
    } else {
        match entry_link(entry).and_then(|l| platform_handle(l, ctx.url)) {
            Some(handle) => {
                let origin = ctx.url.origin().ascii_serialization();
                IdentityObservation::new(ctx.source, &handle)
                    .username(&handle)
                    .profile_url(&format!("{origin}/{handle}"))
            }
            None => IdentityObservation::new(ctx.source, name?),
        }
    };
    if let Some(name) = name {
        identity = identity.display_name(name);
    }
    Some(identity)
}

fn feed_type(t: &FeedType) -> &'static str {
    match t {
        FeedType::Atom => "atom",
        FeedType::JSON => "json",
        FeedType::RSS0 => "rss0",
        FeedType::RSS1 => "rss1",
        FeedType::RSS2 => "rss2",
    }
}

/// The stored payload: the entry as the feed gave it (markup kept), in a shape of this
/// plugin's own rather than feed-rs' model so a crate upgrade does not change it.
pub(crate) fn payload(entry: &Entry, ctx: &FeedContext<'_>) -> Value {
    let text = |t: &Option<Text>| t.as_ref().map(|t| t.content.clone());
    json!({
        "feed": {
            "url": ctx.url.as_str(),
            "type": feed_type(&ctx.feed.feed_type),
            "title": text(&ctx.feed.title),
        },
        "id": entry.id,
        "title": text(&entry.title),
        "links": entry.links.iter().map(|l| json!({
            "href": l.href, "rel": l.rel, "type": l.media_type, "title": l.title,
        })).collect::<Vec<_>>(),
        "authors": entry.authors.iter().map(|a| json!({
            "name": a.name, "uri": a.uri, "email": a.email,
        })).collect::<Vec<_>>(),
        "published": entry.published.map(rfc3339),
        "updated": entry.updated.map(rfc3339),
        "summary": text(&entry.summary),
        "content": entry.content.as_ref().and_then(|c| c.body.clone()),
        "categories": entry.categories.iter().map(|c| c.label.clone().unwrap_or_else(|| c.term.clone())).collect::<Vec<_>>(),
        "language": entry.language,
    })
}

/// Turns one entry into a drowl event (source, type `article`, the entry's date —
/// published, else updated, else the response's — its text, payload and author).
pub(crate) fn map_entry(entry: &Entry, ctx: &FeedContext<'_>) -> Event {
    let occurred = entry.published.or(entry.updated).unwrap_or(ctx.fetched_at);
    let mut event = Event::builder(
        &external_id(entry, ctx.url),
        ctx.source,
        EVENT_TYPE,
        &rfc3339(occurred),
    )
    .payload_json(&payload(entry, ctx));
    if let Some(text) = entry_text(entry) {
        event = event.text(&text);
    }
    if let Some(actor) = author_identity(entry, ctx) {
        event = event.actor(actor);
    }
    event.build()
}
