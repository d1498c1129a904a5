//! One run of a feed: a conditional GET, the document parsed, and the entries not
//! handed over before mapped to events. A feed is one document, so a run is one page.
//!
//! The HTTP call is a parameter so all of this runs natively in tests against the
//! fixtures, without a host.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use drowl_plugin_sdk::http::{HttpError, Response};
use drowl_plugin_sdk::ingestion::IngestBatch;
use drowl_plugin_sdk::{IdentityObservation, JobError};
use url::Url;

use crate::cursor::{Cursor, MAX_SEEN, digest};
use crate::mapping::{FeedContext, external_id, map_entry};
use crate::parse::parse;
use crate::settings::{Job, source_for};

/// Feeds are served to every reader; a name lets their operators see who polls.
pub(crate) const USER_AGENT: &str = concat!("drowl-feed-plugin/", env!("CARGO_PKG_VERSION"));
/// The feed formats this plugin reads, most specific first.
pub(crate) const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";
/// Redirects (http → https, a moved feed) followed in one run.
const MAX_REDIRECTS: usize = 5;

/// A GET request, independent of the host's HTTP types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedRequest {
    /// Absolute URL.
    pub(crate) url: String,
    /// Request headers, in order.
    pub(crate) headers: Vec<(String, String)>,
}

/// The result of a run, plus what the caller should log.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// What goes back to the host.
    pub(crate) batch: IngestBatch,
    /// The URL that answered (after redirects).
    pub(crate) url: String,
    /// Whether the server answered 304 Not Modified.
    pub(crate) not_modified: bool,
    /// Entries in the document.
    pub(crate) received: usize,
    /// Things worth a warning in the job log.
    pub(crate) warnings: Vec<String>,
}

fn request(url: &Url, cursor: &Cursor) -> FeedRequest {
    let mut headers = vec![
        ("User-Agent".to_owned(), USER_AGENT.to_owned()),
        ("Accept".to_owned(), ACCEPT.to_owned()),
    ];
    if let Some(etag) = &cursor.etag {
        headers.push(("If-None-Match".to_owned(), etag.clone()));
    }
    if let Some(lm) = &cursor.last_modified {
        headers.push(("If-Modified-Since".to_owned(), lm.clone()));
    }
    FeedRequest {
        url: url.to_string(),
        headers,
    }
}

/// Maps an unsuccessful status to queue semantics, naming the feed: 429 and 5xx are
/// retried (after `Retry-After` when given), 404/410 and other 4xx fail at once.
fn check_status(resp: Response, url: &Url) -> Result<Response, JobError> {
    if resp.is_success() {
        return Ok(resp);
    }
    let status = resp.status;
    let retry_after_ms = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000));
    let msg = match status {
        404 | 410 => format!("feed {url} answered HTTP {status}: there is no feed at that address"),
        _ => format!("feed {url} answered HTTP {status}"),
    };
    Err(match status {
        429 => JobError::rate_limited(msg, retry_after_ms.unwrap_or(60_000)),
        500..=599 => match retry_after_ms {
            Some(ms) => JobError::retry_after(msg, ms),
            None => JobError::retryable(msg),
        },
        _ => JobError::permanent(msg),
    })
}

/// The response's `Date`, else `now`: when an entry without a date is said to occur.
fn response_time(resp: &Response, now: impl FnOnce() -> DateTime<Utc>) -> DateTime<Utc> {
    resp.header("date")
        .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
        .map_or_else(now, |d| d.with_timezone(&Utc))
}

/// Fetches the feed (following redirects), parses it and maps its new entries.
pub(crate) fn run<F>(
    job: &Job,
    raw_cursor: Option<&str>,
    now: impl FnOnce() -> DateTime<Utc>,
    mut fetch: F,
) -> Result<Outcome, JobError>
where
    F: FnMut(&FeedRequest) -> Result<Response, HttpError>,
{
    let feed_key = job.url.as_str();
    let mut warnings = Vec::new();
    let cursor = Cursor::decode(raw_cursor, feed_key).unwrap_or_else(|e| {
        warnings.push(format!("{}; reading the feed afresh", e.0));
        Cursor::start(feed_key)
    });

    let mut url = job.url.clone();
    let mut redirects = 0;
    let resp = loop {
        let resp = fetch(&request(&url, &cursor)).map_err(|e| {
            let e = JobError::from(e);
            match e {
                JobError::Permanent(m) => JobError::permanent(format!("feed {url}: {m}")),
                JobError::InvalidConfig(m) => JobError::invalid_config(format!("feed {url}: {m}")),
                other => other,
            }
        })?;
        if matches!(resp.status, 301 | 302 | 303 | 307 | 308)
            && let Some(location) = resp.header("location")
        {
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(JobError::permanent(format!(
                    "feed {} redirected more than {MAX_REDIRECTS} times (last to {url})",
                    job.url
                )));
            }
            url = url.join(location).map_err(|e| {
                JobError::permanent(format!(
                    "feed {url} redirected to an invalid URL {location:?}: {e}"
                ))
            })?;
            continue;
        }
        break resp;
    };

    if resp.status == 304 {
        // Nothing changed: the cursor stays as it is, validators included.
        return Ok(Outcome {
            batch: IngestBatch::last_page(Vec::new()).with_cursor(cursor.encode()),
            url: url.to_string(),
            not_modified: true,
            received: 0,
            warnings,
        });
    }
    let resp = check_status(resp, &url)?;
    let feed = parse(&resp.body, url.as_str()).map_err(|e| JobError::permanent(e.0))?;

    let source = source_for(&job.url);
    let ctx = FeedContext {
        url: &job.url,
        source,
        feed: &feed,
        fetched_at: response_time(&resp, now),
    };
    let mut events = Vec::new();
    let mut identities: Vec<IdentityObservation> = Vec::new();
    let mut actors = BTreeSet::new();
    let mut listed = BTreeSet::new();
    // Entries handed over (now or before); entries skipped for `since` stay out, so a
    // later job asking for more of the past still gets them.
    let mut seen = Vec::new();
    for entry in &feed.entries {
        let id = external_id(entry, &job.url);
        if !listed.insert(id.clone()) {
            warnings.push(format!(
                "feed {url} lists entry {id} twice; storing it once"
            ));
            continue;
        }
        if cursor.has_seen(&id) {
            seen.push(digest(&id));
            continue;
        }
        if let Some(since) = job.since
            && entry.published.or(entry.updated).is_some_and(|t| t < since)
        {
            continue;
        }
        seen.push(digest(&id));
        let event = map_entry(entry, &ctx);
        if let Some(actor) = &event.actor
            && actors.insert(actor.platform_user_id.clone())
        {
            identities.push(actor.clone());
        }
        events.push(event);
    }
    seen.truncate(MAX_SEEN);
    let next = Cursor {
        etag: resp.header("etag").map(str::to_owned),
        last_modified: resp.header("last-modified").map(str::to_owned),
        seen,
        ..Cursor::start(feed_key)
    };
    Ok(Outcome {
        batch: IngestBatch {
            events,
            identities,
            next_cursor: Some(next.encode()),
            has_more: false,
        },
        url: url.to_string(),
        not_modified: false,
        received: feed.entries.len(),
        warnings,
    })
}

#[cfg(test)]
mod tests;
