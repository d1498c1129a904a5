//! Sweeps over the recorded fixtures, with an in-memory stand-in for api.github.com.

use std::path::{Path, PathBuf};

use drowl_plugin_sdk::http::{HttpError, Response};
use drowl_plugin_sdk::{Event, JobError};
use serde_json::Value;
use url::Url;

use super::{PageOutcome, PageRequest, SweepEnd, run_page};
use crate::cursor::Cursor;
use crate::settings::{Job, Settings};

const BASE: &str = "https://api.github.com";
const OCTOCAT_NEWEST: &str = "52917340118";
const OCTOCAT_LATER_NEWEST: &str = "52921004577";
const OCTOCAT_COUNT: usize = 77;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Serves `fixtures/<set>/<path>/page-N.json` the way GitHub would: verbatim at the
/// recorded page size, re-sliced otherwise, with `Link`, `ETag` and 304 support.
struct FakeGitHub {
    set: &'static str,
    requests: Vec<PageRequest>,
    /// Status codes to answer with before serving normally.
    failures: Vec<u16>,
    /// Replaces the `Link` header's origin (to test that foreign links are refused).
    link_origin: Option<&'static str>,
}

impl FakeGitHub {
    fn new(set: &'static str) -> Self {
        Self {
            set,
            requests: Vec::new(),
            failures: Vec::new(),
            link_origin: None,
        }
    }

    fn header<'a>(req: &'a PageRequest, name: &str) -> Option<&'a str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn pages(&self, path: &str) -> Option<Vec<Vec<u8>>> {
        let dir = fixtures().join(self.set).join(path.trim_start_matches('/'));
        let dir = if dir.is_dir() {
            dir
        } else {
            fixtures().join("base").join(path.trim_start_matches('/'))
        };
        let mut pages = Vec::new();
        for n in 1.. {
            match std::fs::read(dir.join(format!("page-{n}.json"))) {
                Ok(b) => pages.push(b),
                Err(_) => break,
            }
        }
        (!pages.is_empty()).then_some(pages)
    }

    fn serve(&mut self, req: &PageRequest) -> Result<Response, HttpError> {
        self.requests.push(req.clone());
        if !self.failures.is_empty() {
            let status = self.failures.remove(0);
            return Ok(Response {
                status,
                headers: Vec::new(),
                body: b"{\"message\":\"Server Error\"}".to_vec(),
            });
        }
        let url = Url::parse(&req.url).map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
        let q = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.parse::<usize>().ok())
        };
        let per_page = q("per_page").unwrap_or(30);
        let page = q("page").unwrap_or(1);
        let Some(pages) = self.pages(url.path()) else {
            return Ok(Response {
                status: 404,
                headers: Vec::new(),
                body: b"{\"message\":\"Not Found\"}".to_vec(),
            });
        };
        let (body, last) = if per_page == 30 {
            (
                pages
                    .get(page - 1)
                    .cloned()
                    .unwrap_or_else(|| b"[]".to_vec()),
                pages.len(),
            )
        } else {
            let all: Vec<Value> = pages
                .iter()
                .flat_map(|p| serde_json::from_slice::<Vec<Value>>(p).unwrap_or_default())
                .collect();
            let slice: Vec<&Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            (
                serde_json::to_vec(&slice).unwrap_or_default(),
                all.len().div_ceil(per_page).max(1),
            )
        };
        let etag = format!("W/\"{:016x}\"", fnv1a(&body));
        if Self::header(req, "if-none-match") == Some(etag.as_str()) {
            return Ok(Response {
                status: 304,
                headers: vec![("etag".into(), etag)],
                body: Vec::new(),
            });
        }
        let mut headers = vec![
            ("etag".to_owned(), etag),
            ("x-ratelimit-remaining".to_owned(), "4999".to_owned()),
        ];
        if page < last {
            let origin = self.link_origin.unwrap_or(BASE);
            let link = |p: usize| format!("<{origin}{}?per_page={per_page}&page={p}>", url.path());
            headers.push((
                "Link".to_owned(),
                format!(
                    "{}; rel=\"next\", {}; rel=\"last\"",
                    link(page + 1),
                    link(last)
                ),
            ));
        }
        Ok(Response {
            status: 200,
            headers,
            body,
        })
    }
}

fn settings(per_page: u32) -> Settings {
    Settings::from_config(&[("per-page".to_owned(), per_page.to_string())]).expect("valid settings")
}

fn job(input: &str) -> Job {
    Job::from_input(input, None).expect("valid input")
}

/// What a host does: call until `has_more` is false, carrying the cursor along.
struct Run {
    events: Vec<Event>,
    pages: Vec<PageOutcome>,
    cursor: Option<String>,
}

fn run(
    gh: &mut FakeGitHub,
    s: &Settings,
    j: &Job,
    token: Option<&str>,
    cursor: Option<String>,
) -> Run {
    let mut cursor = cursor;
    let mut events = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..20 {
        let out = run_page(s, j, token, cursor.as_deref(), |r| gh.serve(r)).expect("page succeeds");
        cursor = out.batch.next_cursor.clone();
        events.extend(out.batch.events.iter().cloned());
        let more = out.batch.has_more;
        pages.push(out);
        if !more {
            return Run {
                events,
                pages,
                cursor,
            };
        }
    }
    panic!("the sweep did not end");
}

fn decoded(cursor: Option<&str>) -> Cursor {
    serde_json::from_str(cursor.expect("a cursor")).expect("cursor json")
}

fn page_numbers(gh: &FakeGitHub) -> Vec<String> {
    gh.requests
        .iter()
        .map(|r| {
            let url = Url::parse(&r.url).expect("url");
            url.query_pairs()
                .find(|(k, _)| k == "page")
                .map_or("1".to_owned(), |(_, v)| v.into_owned())
        })
        .collect()
}

#[test]
fn first_run_walks_every_page_and_records_the_high_water_mark() {
    let mut gh = FakeGitHub::new("base");
    let r = run(
        &mut gh,
        &settings(30),
        &job(r#"{"user":"octocat"}"#),
        None,
        None,
    );
    assert_eq!(page_numbers(&gh), ["1", "2", "3"]);
    assert_eq!(
        gh.requests[0].url,
        "https://api.github.com/users/octocat/events/public?per_page=30"
    );
    assert_eq!(
        r.pages
            .iter()
            .map(|p| p.batch.events.len())
            .collect::<Vec<_>>(),
        [30, 30, 17]
    );
    assert_eq!(
        r.pages.iter().map(|p| p.batch.has_more).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(r.pages[2].end, Some(SweepEnd::LastPage));
    assert_eq!(r.events.len(), OCTOCAT_COUNT);
    let ids: std::collections::HashSet<_> =
        r.events.iter().map(|e| e.external_id.clone()).collect();
    assert_eq!(ids.len(), OCTOCAT_COUNT, "no duplicates");

    // Mid-sweep cursors carry the next page and the newest id seen so far.
    let mid = decoded(r.pages[0].batch.next_cursor.as_deref());
    assert_eq!(
        mid.next.as_deref(),
        Some("https://api.github.com/users/octocat/events/public?per_page=30&page=2")
    );
    assert_eq!(mid.top.as_ref().map(|t| t.as_str()), Some(OCTOCAT_NEWEST));
    assert_eq!(mid.hwm, None);
    // The final cursor holds only the high-water mark (and page 1's ETag).
    let end = decoded(r.cursor.as_deref());
    assert_eq!(end.next, None);
    assert_eq!(end.top, None);
    assert_eq!(end.hwm.as_ref().map(|t| t.as_str()), Some(OCTOCAT_NEWEST));
    assert!(end.etag.is_some());

    for req in &gh.requests {
        let h = |n| FakeGitHub::header(req, n);
        assert_eq!(h("user-agent"), Some("drowl-github-plugin"));
        assert_eq!(h("accept"), Some("application/vnd.github+json"));
        assert_eq!(h("x-github-api-version"), Some("2022-11-28"));
        assert_eq!(h("authorization"), None);
    }
}

#[test]
fn payloads_are_the_items_as_received() {
    let mut gh = FakeGitHub::new("base");
    let r = run(
        &mut gh,
        &settings(30),
        &job(r#"{"user":"octocat"}"#),
        None,
        None,
    );
    let page1 =
        std::fs::read_to_string(fixtures().join("base/users/octocat/events/public/page-1.json"))
            .expect("fixture");
    for e in &r.pages[0].batch.events {
        assert!(
            page1.contains(&e.payload),
            "payload of {} is a verbatim slice",
            e.external_id
        );
        let v: Value = serde_json::from_str(&e.payload).expect("payload is JSON");
        assert_eq!(v["id"], e.external_id.as_str());
    }
}

#[test]
fn unchanged_feed_costs_one_conditional_request() {
    let mut gh = FakeGitHub::new("base");
    let (s, j) = (settings(30), job(r#"{"user":"octocat"}"#));
    let first = run(&mut gh, &s, &j, None, None);
    gh.requests.clear();
    let second = run(&mut gh, &s, &j, None, first.cursor.clone());
    assert_eq!(gh.requests.len(), 1);
    assert!(FakeGitHub::header(&gh.requests[0], "if-none-match").is_some());
    assert_eq!(second.pages[0].end, Some(SweepEnd::NotModified));
    assert!(second.events.is_empty());
    assert_eq!(second.cursor, first.cursor);
}

#[test]
fn second_run_fetches_only_new_events() {
    let mut gh = FakeGitHub::new("base");
    let (s, j) = (settings(30), job(r#"{"user":"octocat"}"#));
    let first = run(&mut gh, &s, &j, None, None);
    gh.set = "octocat-later";
    gh.requests.clear();
    let second = run(&mut gh, &s, &j, None, first.cursor);
    assert_eq!(
        page_numbers(&gh),
        ["1"],
        "stops on page 1 at the high-water mark"
    );
    assert_eq!(second.pages[0].end, Some(SweepEnd::ReachedKnownEvents));
    assert_eq!(second.events.len(), 5);
    assert_eq!(second.events[0].external_id, OCTOCAT_LATER_NEWEST);
    assert!(
        second
            .events
            .iter()
            .all(|e| e.external_id.as_str() > OCTOCAT_NEWEST)
    );
    let end = decoded(second.cursor.as_deref());
    assert_eq!(
        end.hwm.as_ref().map(|t| t.as_str()),
        Some(OCTOCAT_LATER_NEWEST)
    );
    // And a third run against the same state has nothing to do.
    gh.requests.clear();
    let third = run(&mut gh, &s, &j, None, second.cursor);
    assert!(third.events.is_empty());
    assert_eq!(gh.requests.len(), 1);
}

#[test]
fn new_events_during_a_sweep_are_picked_up_by_the_next_one() {
    let mut gh = FakeGitHub::new("base");
    let (s, j) = (settings(30), job(r#"{"user":"octocat"}"#));
    let p1 = run_page(&s, &j, None, None, |r| gh.serve(r)).expect("page 1");
    // Five events arrive between page 1 and page 2: the feed shifts by five.
    gh.set = "octocat-later";
    let rest = run(&mut gh, &s, &j, None, p1.batch.next_cursor.clone());
    let mut ids: Vec<String> = p1
        .batch
        .events
        .iter()
        .map(|e| e.external_id.clone())
        .collect();
    ids.extend(rest.events.iter().map(|e| e.external_id.clone()));
    let distinct: std::collections::HashSet<_> = ids.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        OCTOCAT_COUNT,
        "every old event, the five shifted ones twice"
    );
    assert_eq!(ids.len(), OCTOCAT_COUNT + 5);
    let end = decoded(rest.cursor.as_deref());
    assert_eq!(end.hwm.as_ref().map(|t| t.as_str()), Some(OCTOCAT_NEWEST));
    let next = run(&mut gh, &s, &j, None, rest.cursor);
    assert_eq!(next.events.len(), 5);
}

#[test]
fn page_size_is_configurable() {
    let mut gh = FakeGitHub::new("base");
    let r = run(
        &mut gh,
        &settings(100),
        &job(r#"{"user":"octocat"}"#),
        None,
        None,
    );
    assert_eq!(gh.requests.len(), 1);
    assert_eq!(
        gh.requests[0].url,
        "https://api.github.com/users/octocat/events/public?per_page=100"
    );
    assert_eq!(r.events.len(), OCTOCAT_COUNT);

    let mut gh = FakeGitHub::new("base");
    let r = run(
        &mut gh,
        &settings(25),
        &job(r#"{"user":"octocat"}"#),
        None,
        None,
    );
    assert_eq!(page_numbers(&gh), ["1", "2", "3", "4"]);
    assert_eq!(r.events.len(), OCTOCAT_COUNT);
}

#[test]
fn since_ends_the_sweep() {
    let mut gh = FakeGitHub::new("base");
    let since = "2025-11-01T00:00:00Z";
    let j = Job::from_input(r#"{"user":"octocat"}"#, Some(since)).expect("job");
    let r = run(&mut gh, &settings(30), &j, None, None);
    assert!(!r.events.is_empty() && r.events.len() < OCTOCAT_COUNT);
    assert!(r.events.iter().all(|e| e.occurred_at.as_str() >= since));
    assert_eq!(
        r.pages.last().and_then(|p| p.end),
        Some(SweepEnd::ReachedSince)
    );
    let end = decoded(r.cursor.as_deref());
    assert_eq!(end.hwm.as_ref().map(|t| t.as_str()), Some(OCTOCAT_NEWEST));
}

#[test]
fn a_failed_page_is_retried_from_the_same_cursor() {
    let mut gh = FakeGitHub::new("base");
    let (s, j) = (settings(30), job(r#"{"user":"octocat"}"#));
    let p1 = run_page(&s, &j, None, None, |r| gh.serve(r)).expect("page 1");
    gh.failures.push(502);
    let err = run_page(&s, &j, None, p1.batch.next_cursor.as_deref(), |r| {
        gh.serve(r)
    });
    assert!(matches!(err, Err(JobError::Retryable(_))), "{err:?}");
    let rest = run(&mut gh, &s, &j, None, p1.batch.next_cursor.clone());
    assert_eq!(p1.batch.events.len() + rest.events.len(), OCTOCAT_COUNT);
    assert_eq!(page_numbers(&gh), ["1", "2", "2", "3"]);
}

#[test]
fn token_is_sent_as_bearer() {
    let mut gh = FakeGitHub::new("base");
    run(
        &mut gh,
        &settings(30),
        &job(r#"{"user":"octocat"}"#),
        Some("ghp_example"),
        None,
    );
    for req in &gh.requests {
        assert_eq!(
            FakeGitHub::header(req, "authorization"),
            Some("Bearer ghp_example")
        );
    }
}

#[test]
fn foreign_next_links_are_refused() {
    let mut gh = FakeGitHub::new("base");
    gh.link_origin = Some("https://evil.example");
    let err = run_page(
        &settings(30),
        &job(r#"{"user":"octocat"}"#),
        Some("t"),
        None,
        |r| gh.serve(r),
    );
    match err {
        Err(JobError::Permanent(m)) => assert!(m.contains("evil.example"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn redirects_are_followed_only_on_the_api_origin() {
    let (s, j) = (settings(30), job(r#"{"repo":"octocat/Old-Name"}"#));
    let mut gh = FakeGitHub::new("base");
    let mut calls = 0;
    let out = run_page(&s, &j, None, None, |r| {
        calls += 1;
        if r.url.contains("Old-Name") {
            Ok(Response {
                status: 301,
                headers: vec![(
                    "Location".into(),
                    "/repos/octocat/Hello-World/events?per_page=30".into(),
                )],
                body: Vec::new(),
            })
        } else {
            gh.serve(r)
        }
    })
    .expect("redirect followed");
    assert_eq!(calls, 2);
    assert_eq!(
        out.url,
        "https://api.github.com/repos/octocat/Hello-World/events?per_page=30"
    );
    assert_eq!(out.batch.events.len(), 30);

    let err = run_page(&s, &j, Some("secret"), None, |_| {
        Ok(Response {
            status: 302,
            headers: vec![("Location".into(), "https://elsewhere.example/steal".into())],
            body: Vec::new(),
        })
    });
    assert!(matches!(err, Err(JobError::Permanent(_))), "{err:?}");
}

#[test]
fn cursor_of_another_feed_starts_fresh() {
    let mut gh = FakeGitHub::new("base");
    let (s, j) = (settings(30), job(r#"{"user":"octocat"}"#));
    let foreign = r#"{"v":1,"feed":"/orgs/drowl-dev/events","hwm":"99999999999"}"#.to_owned();
    let out = run_page(&s, &j, None, Some(&foreign), |r| gh.serve(r)).expect("page");
    assert_eq!(out.batch.events.len(), 30);
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
}

#[test]
fn repository_and_organisation_feeds() {
    let mut gh = FakeGitHub::new("base");
    let r = run(
        &mut gh,
        &settings(30),
        &job(r#"{"repo":"octocat/Hello-World"}"#),
        None,
        None,
    );
    assert_eq!(
        gh.requests[0].url,
        "https://api.github.com/repos/octocat/Hello-World/events?per_page=30"
    );
    assert_eq!(r.events.len(), 33);
    let actors: std::collections::HashSet<_> = r
        .pages
        .iter()
        .flat_map(|p| {
            p.batch
                .identities
                .iter()
                .map(|i| i.platform_user_id.clone())
        })
        .collect();
    assert!(
        actors.len() >= 4,
        "several people act on the repository: {actors:?}"
    );
    for p in &r.pages {
        let mut ids: Vec<_> = p
            .batch
            .identities
            .iter()
            .map(|i| &i.platform_user_id)
            .collect();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "identities are distinct within a page");
    }

    let mut gh = FakeGitHub::new("base");
    let r = run(
        &mut gh,
        &settings(30),
        &job(r#"{"org":"drowl-dev"}"#),
        None,
        None,
    );
    assert_eq!(
        gh.requests[0].url,
        "https://api.github.com/orgs/drowl-dev/events?per_page=30"
    );
    assert_eq!(r.events.len(), 39);
}

#[test]
fn empty_and_missing_feeds() {
    let mut gh = FakeGitHub::new("base");
    let r = run(
        &mut gh,
        &settings(30),
        &job(r#"{"user":"quiet"}"#),
        None,
        None,
    );
    assert!(r.events.is_empty());
    assert_eq!(decoded(r.cursor.as_deref()).hwm, None);

    let err = run_page(
        &settings(30),
        &job(r#"{"user":"nobody-here"}"#),
        None,
        None,
        |r| gh.serve(r),
    );
    match err {
        Err(JobError::Permanent(m)) => {
            assert!(m.contains("GitHub user `nobody-here` not found"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fixture_text_reaches_keyword_extraction() {
    let mut gh = FakeGitHub::new("base");
    let r = run(
        &mut gh,
        &settings(100),
        &job(r#"{"user":"octocat"}"#),
        None,
        None,
    );
    let texts: Vec<&str> = r.events.iter().filter_map(|e| e.text.as_deref()).collect();
    for needle in [
        "TypeScriptの型安全な設計",
        "Rustで書いたCLIツール",
        "WebAssembly",
        "React",
        "TypeScript",
    ] {
        assert!(
            texts.iter().any(|t| t.contains(needle)),
            "some text mentions {needle}"
        );
    }
    let types: std::collections::BTreeSet<_> =
        r.events.iter().map(|e| e.event_type.as_str()).collect();
    for t in [
        "star",
        "fork",
        "push",
        "issue",
        "comment",
        "pull_request",
        "review",
        "review_comment",
        "release",
        "create",
        "delete",
        "public",
        "member",
        "wiki",
        "commit_comment",
    ] {
        assert!(types.contains(t), "fixtures cover {t}: {types:?}");
    }
    for e in &r.events {
        assert_eq!(e.source, "github");
        assert_eq!(
            e.actor.as_ref().map(|a| a.platform_user_id.as_str()),
            Some("583231")
        );
        match e.event_type.as_str() {
            "star" | "fork" | "delete" | "public" | "member" => assert_eq!(e.text, None),
            // An approving review without a comment has no text.
            "review" => {}
            other => assert!(e.text.is_some(), "{other} {} has text", e.external_id),
        }
    }
}

#[test]
fn junk_bodies_are_permanent_errors() {
    let (s, j) = (settings(30), job(r#"{"user":"octocat"}"#));
    let err = run_page(&s, &j, None, None, |_| {
        Ok(Response {
            status: 200,
            headers: Vec::new(),
            body: b"<html>".to_vec(),
        })
    });
    assert!(matches!(err, Err(JobError::Permanent(_))), "{err:?}");
    let out = run_page(&s, &j, None, None, |_| {
        Ok(Response {
            status: 200,
            headers: Vec::new(),
            body: br#"[{"id":"5","type":"WatchEvent","created_at":"2025-01-01T00:00:00Z"},{"type":"x"},{"id":"4","type":"WatchEvent"}]"#.to_vec(),
        })
    })
    .expect("page");
    assert_eq!(out.batch.events.len(), 1);
    assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
}
