//! One call of `ingest`: fetch one page of the feed and decide where to continue.
//!
//! A *sweep* walks the feed from page 1 (newest events) towards older pages by
//! following `Link: rel="next"`. It ends when there is no next page, when it reaches an
//! event at or below the previous sweep's high-water mark (everything older was
//! ingested by an earlier sweep), or when it reaches an event older than `since`. The
//! cursor then holds only the new high-water mark, so the next run starts a new sweep
//! at page 1. See [`crate::cursor`] for the cursor's fields.
//!
//! The HTTP call is a parameter so all of this runs natively in tests against the
//! recorded fixtures, without a host.

use std::collections::BTreeSet;

use drowl_plugin_sdk::http::{HttpError, Response};
use drowl_plugin_sdk::ingestion::IngestBatch;
use drowl_plugin_sdk::{IdentityObservation, JobError};
use serde_json::Value;
use serde_json::value::RawValue;
use url::Url;

use crate::cursor::Cursor;
use crate::event_id::EventId;
use crate::http_util::{check_status, link_with_rel};
use crate::mapping::{item_id, map_event};
use crate::settings::{Job, Settings};
use crate::time::parse_rfc3339;

/// GitHub asks every client to identify itself.
pub(crate) const USER_AGENT: &str = "drowl-github-plugin";
/// The media type GitHub recommends for the REST API.
pub(crate) const ACCEPT: &str = "application/vnd.github+json";
/// The REST API version this plugin was written against.
pub(crate) const API_VERSION: &str = "2022-11-28";
/// Same-origin redirects (a renamed repository answers 301) followed in one call.
const MAX_REDIRECTS: usize = 3;

/// A GET request for one page, independent of the host's HTTP types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRequest {
    /// Absolute URL, always on the configured API origin.
    pub(crate) url: String,
    /// Request headers, in order.
    pub(crate) headers: Vec<(String, String)>,
}

/// Why a sweep ended on this page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SweepEnd {
    /// GitHub sent no `rel="next"` link.
    LastPage,
    /// An event at or below the previous sweep's high-water mark was reached.
    ReachedKnownEvents,
    /// An event older than `since` was reached.
    ReachedSince,
    /// Page 1 answered 304 Not Modified: nothing happened since the last sweep.
    NotModified,
}

/// The result of one call, plus what the caller should log.
#[derive(Debug)]
pub(crate) struct PageOutcome {
    /// What goes back to the host.
    pub(crate) batch: IngestBatch,
    /// The URL that was fetched (after redirects).
    pub(crate) url: String,
    /// Items in GitHub's response.
    pub(crate) received: usize,
    /// Set when this page ended the sweep.
    pub(crate) end: Option<SweepEnd>,
    /// Things worth a warning in the job log (skipped items, discarded cursors).
    pub(crate) warnings: Vec<String>,
}

fn request(url: &Url, token: Option<&str>, etag: Option<&str>) -> PageRequest {
    let mut headers = vec![
        ("User-Agent".to_owned(), USER_AGENT.to_owned()),
        ("Accept".to_owned(), ACCEPT.to_owned()),
        ("X-GitHub-Api-Version".to_owned(), API_VERSION.to_owned()),
    ];
    if let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    if let Some(etag) = etag {
        headers.push(("If-None-Match".to_owned(), etag.to_owned()));
    }
    PageRequest {
        url: url.to_string(),
        headers,
    }
}

/// Resolves `link` against `base` and refuses anything off the API origin: the token
/// goes with every request, so a crafted `Link` or `Location` must not send it elsewhere.
fn follow(settings: &Settings, base: &Url, link: &str, what: &str) -> Result<Url, JobError> {
    let url = base.join(link).map_err(|e| {
        JobError::permanent(format!("GitHub sent an invalid {what} URL {link:?}: {e}"))
    })?;
    if !settings.same_origin(&url) {
        return Err(JobError::permanent(format!(
            "refusing to follow {what} to {url}: it is not on api-base-url {}",
            settings.base()
        )));
    }
    Ok(url)
}

/// Fetches one page (following same-origin redirects) and maps it.
pub(crate) fn run_page<F>(
    settings: &Settings,
    job: &Job,
    token: Option<&str>,
    raw_cursor: Option<&str>,
    mut fetch: F,
) -> Result<PageOutcome, JobError>
where
    F: FnMut(&PageRequest) -> Result<Response, HttpError>,
{
    let feed = job.target.path();
    let mut warnings = Vec::new();
    let mut cursor = Cursor::decode(raw_cursor, &feed).unwrap_or_else(|e| {
        warnings.push(format!("{}; starting a fresh sweep", e.0));
        Cursor::start(&feed)
    });

    let first_page_url = format!("{}{}?per_page={}", settings.base(), feed, settings.per_page);
    let first_page_url = Url::parse(&first_page_url).map_err(|e| {
        JobError::invalid_config(format!("`api-base-url` does not make a valid URL: {e}"))
    })?;
    let (mut url, first_page) = match cursor.next.take() {
        None => (first_page_url, true),
        Some(next) => match Url::parse(&next) {
            Ok(u) if settings.same_origin(&u) => (u, false),
            _ => {
                warnings.push(format!(
                    "cursor's next page {next} is not on api-base-url {}; starting a fresh sweep",
                    settings.base()
                ));
                cursor = Cursor::start(&feed);
                (first_page_url, true)
            }
        },
    };
    // Only a completed sweep's page 1 may be answered with 304.
    let etag_sent = if first_page {
        cursor.etag.clone()
    } else {
        None
    };

    let mut redirects = 0;
    let resp = loop {
        let resp = fetch(&request(&url, token, etag_sent.as_deref())).map_err(JobError::from)?;
        if matches!(resp.status, 301 | 302 | 303 | 307 | 308)
            && let Some(location) = resp.header("location")
        {
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(JobError::permanent(format!(
                    "GitHub redirected more than {MAX_REDIRECTS} times from {url}"
                )));
            }
            url = follow(settings, &url, location, "a redirect")?;
            continue;
        }
        break resp;
    };

    if resp.status == 304 && etag_sent.is_some() {
        let idle = Cursor {
            next: None,
            top: None,
            ..cursor
        };
        return Ok(PageOutcome {
            batch: IngestBatch {
                events: Vec::new(),
                identities: Vec::new(),
                next_cursor: Some(idle.encode()),
                has_more: false,
            },
            url: url.to_string(),
            received: 0,
            end: Some(SweepEnd::NotModified),
            warnings,
        });
    }
    let resp = check_status(resp, &job.target)?;

    let items: Vec<Box<RawValue>> = serde_json::from_slice(&resp.body).map_err(|e| {
        JobError::permanent(format!(
            "GitHub's answer for {url} is not a JSON array of events: {e}"
        ))
    })?;

    let mut top = if first_page { None } else { cursor.top.clone() };
    let mut events = Vec::with_capacity(items.len());
    let mut identities: Vec<IdentityObservation> = Vec::new();
    let mut seen_actors = BTreeSet::new();
    let mut end = None;
    for raw in &items {
        // RawValue already checked the syntax; this cannot fail in practice.
        let item: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
        let Some(id) = item_id(&item) else {
            warnings.push(format!("skipped an item without a numeric id on {url}"));
            continue;
        };
        if cursor.hwm.as_ref().is_some_and(|hwm| id <= *hwm) {
            end = Some(SweepEnd::ReachedKnownEvents);
            break;
        }
        let created = item
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339);
        if let (Some(since), Some(created)) = (job.since, created)
            && created < since
        {
            end = Some(SweepEnd::ReachedSince);
            break;
        }
        if top.as_ref().is_none_or(|t: &EventId| id > *t) {
            top = Some(id.clone());
        }
        match map_event(&item, raw.get()) {
            Ok(event) => {
                if let Some(actor) = &event.actor
                    && seen_actors.insert(actor.platform_user_id.clone())
                {
                    identities.push(actor.clone());
                }
                events.push(event);
            }
            Err(e) => warnings.push(format!("skipped event {}: {e}", id.as_str())),
        }
    }

    let next = match end {
        Some(_) => None,
        None => match resp.header("link").and_then(|h| link_with_rel(h, "next")) {
            None => {
                end = Some(SweepEnd::LastPage);
                None
            }
            Some(link) => {
                let next = follow(settings, &url, &link, "the Link rel=\"next\" header")?;
                if next == url {
                    warnings.push(format!(
                        "GitHub's next page is this page ({url}); ending the sweep"
                    ));
                    end = Some(SweepEnd::LastPage);
                    None
                } else {
                    Some(next)
                }
            }
        },
    };

    let etag = if first_page {
        resp.header("etag").map(str::to_owned)
    } else {
        cursor.etag.clone()
    };
    let (next_cursor, has_more) = match next {
        Some(next) => (
            Cursor {
                next: Some(next.to_string()),
                top,
                etag,
                ..cursor
            },
            true,
        ),
        None => {
            let hwm = match (top, cursor.hwm) {
                (Some(t), Some(h)) => Some(t.max(h)),
                (t, h) => t.or(h),
            };
            (
                Cursor {
                    next: None,
                    top: None,
                    hwm,
                    etag,
                    ..cursor
                },
                false,
            )
        }
    };
    Ok(PageOutcome {
        batch: IngestBatch {
            events,
            identities,
            next_cursor: Some(next_cursor.encode()),
            has_more,
        },
        url: url.to_string(),
        received: items.len(),
        end,
        warnings,
    })
}

#[cfg(test)]
mod tests;
