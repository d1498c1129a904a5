//! Runs against the fixtures in `fixtures/`, with a fake HTTP function in place of the
//! host.

use super::*;
use chrono::TimeZone;
use drowl_plugin_sdk::Event;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    Response {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap()
}

fn job(url: &str) -> Job {
    Job::from_input(&serde_json::json!({ "url": url }).to_string(), None).expect("job")
}

/// Runs `job` once against a server that answers every request with `resp`, returning
/// the outcome and the requests made.
fn run_with(
    job: &Job,
    cursor: Option<&str>,
    resp: Response,
) -> (Result<Outcome, JobError>, Vec<FeedRequest>) {
    let mut requests = Vec::new();
    let out = run(job, cursor, now, |r| {
        requests.push(r.clone());
        Ok(resp.clone())
    });
    (out, requests)
}

fn ok(body: Vec<u8>) -> Response {
    response(
        200,
        &[
            ("ETag", "\"v1\""),
            ("Last-Modified", "Thu, 20 Nov 2025 03:00:00 GMT"),
        ],
        body,
    )
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.external_id.as_str()).collect()
}

fn header<'a>(r: &'a FeedRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn rss_entries_become_articles_with_their_authors() {
    let job = job("https://dev.to/feed/ben");
    let (out, requests) = run_with(&job, None, ok(fixture("rss-en.xml")));
    let out = out.expect("run");
    assert_eq!(requests.len(), 1);
    assert_eq!(header(&requests[0], "If-None-Match"), None);
    assert!(header(&requests[0], "Accept").is_some_and(|a| a.contains("application/rss+xml")));
    let events = &out.batch.events;
    assert_eq!(
        ids(events),
        [
            "https://dev.to/ben/shipping-webassembly-plugins-with-rust-4k2j",
            // A guid that is not a URI is qualified by the feed's URL.
            "https://dev.to/feed/ben#42",
            // No guid: the entry's link.
            "https://dev.to/ben/a-post-without-an-author-9z9z",
        ]
    );
    let e = &events[0];
    assert_eq!(e.source, "dev.to");
    assert_eq!(e.event_type, "article");
    assert_eq!(e.occurred_at, "2025-11-17T14:03:00Z");
    assert_eq!(
        e.text.as_deref(),
        Some(
            "Shipping WebAssembly plugins with Rust & WASI\n\nWhy we moved our connectors to WebAssembly components.\nTypeScript stays on the API side."
        )
    );
    let actor = e.actor.as_ref().expect("actor");
    assert_eq!(actor.platform, "dev.to");
    assert_eq!(actor.platform_user_id, "ben");
    assert_eq!(actor.platform_username.as_deref(), Some("ben"));
    assert_eq!(actor.display_name.as_deref(), Some("Ben Halpern"));
    assert_eq!(actor.profile_url.as_deref(), Some("https://dev.to/ben"));
    let payload: serde_json::Value = serde_json::from_str(&e.payload).expect("payload");
    assert_eq!(
        payload["title"],
        "Shipping WebAssembly plugins with Rust & WASI"
    );
    assert_eq!(payload["feed"]["type"], "rss2");
    assert_eq!(
        payload["categories"],
        serde_json::json!(["rust", "webassembly"])
    );
    assert_eq!(payload["authors"][0]["name"], "Ben Halpern");
    assert!(
        payload["summary"]
            .as_str()
            .is_some_and(|s| s.contains("<strong>WebAssembly</strong>"))
    );
    assert_eq!(
        events[1].text.as_deref(),
        Some(
            "What is your favourite React hook?\n\nDiscuss: useEffect, useMemo or something else?"
        )
    );
    // One identity per account.
    assert_eq!(out.batch.identities.len(), 1);
    assert!(!out.batch.has_more);
    assert_eq!(out.received, 3);
}

#[test]
fn japanese_atom_and_rss_stay_intact() {
    let out = run_with(
        &job("https://qiita.com/tags/rust/feed"),
        None,
        ok(fixture("atom-ja.xml")),
    )
    .0
    .expect("atom");
    let events = &out.batch.events;
    assert_eq!(
        ids(events),
        [
            "tag:qiita.com,2005:PublicArticle/3817263",
            "tag:qiita.com,2005:PublicArticle/3817001"
        ]
    );
    assert_eq!(events[0].source, "qiita");
    assert_eq!(events[0].occurred_at, "2025-11-20T01:15:00Z");
    assert_eq!(
        events[0].text.as_deref(),
        Some(
            "RustでWebAssemblyコンポーネントを作る入門\n\nはじめに\nこの記事ではRustとwasm32-wasip2でプラグインを書きます。"
        )
    );
    let payload: serde_json::Value = serde_json::from_str(&events[1].payload).expect("payload");
    assert_eq!(
        payload["title"],
        "TypeScriptの型安全な設計パターン 〜実践編〜"
    );
    assert_eq!(
        payload["feed"]["title"],
        "Rustタグが付けられた新着記事 - Qiita"
    );
    let actor = events[1].actor.as_ref().expect("actor");
    assert_eq!(
        (actor.platform.as_str(), actor.platform_user_id.as_str()),
        ("qiita", "yamada_taro")
    );

    let out = run_with(
        &job("https://zenn.dev/topics/rust/feed"),
        None,
        ok(fixture("rss-ja.xml")),
    )
    .0
    .expect("rss");
    let events = &out.batch.events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].source, "zenn");
    assert_eq!(
        events[0].text.as_deref(),
        Some(
            "所有権とライフタイムを図解で理解する\n\n借用チェッカーに怒られないための考え方をまとめました。"
        )
    );
    let actor = events[1].actor.as_ref().expect("actor");
    assert_eq!(actor.platform_user_id, "hanako");
    assert_eq!(actor.display_name.as_deref(), Some("花子"));
    assert_eq!(
        actor.profile_url.as_deref(),
        Some("https://zenn.dev/hanako")
    );
}

#[test]
fn json_feed_on_a_blog_uses_the_generic_source() {
    let out = run_with(
        &job("https://blog.example.com/feed.json"),
        None,
        ok(fixture("feed.json")),
    )
    .0
    .expect("json feed");
    let events = &out.batch.events;
    assert_eq!(
        ids(events),
        [
            "https://blog.example.com/feed.json#2025-11-18-react-server-components",
            "https://blog.example.com/2025/11/10/東京",
        ]
    );
    assert!(events.iter().all(|e| e.source == "feed"));
    assert_eq!(events[1].occurred_at, "2025-11-10T01:00:00Z");
    assert_eq!(
        events[0].text.as_deref(),
        Some("React Server Components in practice\n\nNotes on React and TypeScript.")
    );
    // The feed's author, keyed by the URI it gives.
    let jane = events[0].actor.as_ref().expect("actor");
    assert_eq!(jane.platform, "feed");
    assert_eq!(jane.platform_user_id, "https://blog.example.com/about");
    assert_eq!(jane.display_name.as_deref(), Some("Jane Doe"));
    // An author with only a name is keyed by the feed's host and the name.
    let taro = events[1].actor.as_ref().expect("actor");
    assert_eq!(taro.platform_user_id, "blog.example.com/山田 太郎");
}

#[test]
fn a_malformed_feed_fails_permanently_saying_where() {
    let (out, _) = run_with(
        &job("https://blog.example.com/broken.xml"),
        None,
        ok(fixture("malformed.xml")),
    );
    match out {
        Err(JobError::Permanent(m)) => {
            assert!(
                m.starts_with(
                    "https://blog.example.com/broken.xml is not well-formed XML: line 6, column"
                ),
                "{m}"
            );
            assert!(m.contains("titel"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_second_run_sends_validators_and_stores_nothing_new() {
    let job = job("https://zenn.dev/topics/rust/feed");
    let first = run_with(&job, None, ok(fixture("rss-ja.xml")))
        .0
        .expect("first");
    let cursor = first.batch.next_cursor.expect("cursor");

    // The server honours the validators: 304, nothing mapped, the cursor kept.
    let (out, requests) = run_with(&job, Some(&cursor), response(304, &[], Vec::new()));
    let out = out.expect("304");
    assert_eq!(header(&requests[0], "If-None-Match"), Some("\"v1\""));
    assert_eq!(
        header(&requests[0], "If-Modified-Since"),
        Some("Thu, 20 Nov 2025 03:00:00 GMT")
    );
    assert!(out.not_modified && out.batch.events.is_empty() && !out.batch.has_more);
    assert_eq!(out.batch.next_cursor.as_deref(), Some(cursor.as_str()));

    // A server that ignores them: the same document again hands over nothing.
    let out = run_with(&job, Some(&cursor), ok(fixture("rss-ja.xml")))
        .0
        .expect("200");
    assert!(out.batch.events.is_empty(), "{:?}", ids(&out.batch.events));
    assert_eq!(out.received, 2);

    // A new entry at the top: only it is handed over.
    let body = String::from_utf8(fixture("rss-ja.xml")).unwrap().replacen(
        "<item>",
        "<item><title>新しい記事</title><link>https://zenn.dev/new/articles/1</link><guid>https://zenn.dev/new/articles/1</guid><pubDate>Fri, 21 Nov 2025 00:00:00 GMT</pubDate></item><item>",
        1,
    );
    let out = run_with(&job, Some(&cursor), ok(body.into_bytes()))
        .0
        .expect("new entry");
    assert_eq!(ids(&out.batch.events), ["https://zenn.dev/new/articles/1"]);

    // A cursor of another feed is not applied.
    let other = run_with(
        &self::job("https://zenn.dev/topics/go/feed"),
        Some(&cursor),
        ok(fixture("rss-ja.xml")),
    );
    let other = other.0.expect("other feed");
    assert_eq!(other.batch.events.len(), 2);
    assert!(
        other.warnings[0].contains("cursor belongs to feed"),
        "{:?}",
        other.warnings
    );
}

#[test]
fn since_skips_older_entries_without_marking_them_seen() {
    let mut job = job("https://dev.to/feed/ben");
    job.since = settings_since("2025-11-15T00:00:00Z");
    let out = run_with(&job, None, ok(fixture("rss-en.xml")))
        .0
        .expect("run");
    assert_eq!(
        ids(&out.batch.events),
        ["https://dev.to/ben/shipping-webassembly-plugins-with-rust-4k2j"]
    );
    // A later run asking for everything still gets the older two.
    job.since = None;
    let cursor = out.batch.next_cursor.expect("cursor");
    let out = run_with(&job, Some(&cursor), ok(fixture("rss-en.xml")))
        .0
        .expect("run");
    assert_eq!(out.batch.events.len(), 2);
}

fn settings_since(s: &str) -> Option<DateTime<Utc>> {
    crate::settings::parse_rfc3339(s)
}

#[test]
fn statuses_and_redirects() {
    let job = job("http://blog.example.com/feed");
    let (out, _) = run_with(&job, None, response(404, &[], b"nope".to_vec()));
    assert!(
        matches!(out, Err(JobError::Permanent(ref m)) if m.contains("http://blog.example.com/feed answered HTTP 404")),
        "{out:?}"
    );
    let (out, _) = run_with(
        &job,
        None,
        response(503, &[("Retry-After", "7")], Vec::new()),
    );
    assert!(
        matches!(out, Err(JobError::Retryable(ref r)) if r.retry_after_ms == Some(7000)),
        "{out:?}"
    );
    let (out, _) = run_with(&job, None, response(429, &[], Vec::new()));
    assert!(matches!(out, Err(JobError::RateLimited(_))), "{out:?}");

    let mut requests = Vec::new();
    let out = run(&job, None, now, |r| {
        requests.push(r.url.clone());
        Ok(if r.url.starts_with("http:") {
            response(
                301,
                &[("Location", "https://blog.example.com/feed.json")],
                Vec::new(),
            )
        } else {
            ok(fixture("feed.json"))
        })
    })
    .expect("redirected");
    assert_eq!(
        requests,
        [
            "http://blog.example.com/feed",
            "https://blog.example.com/feed.json"
        ]
    );
    assert_eq!(out.url, "https://blog.example.com/feed.json");
    // Ids stay qualified by the feed the job names.
    assert_eq!(
        out.batch.events[0].external_id,
        "http://blog.example.com/feed#2025-11-18-react-server-components"
    );

    let (out, requests) = run_with(
        &job,
        None,
        response(302, &[("Location", "/feed")], Vec::new()),
    );
    assert!(
        matches!(out, Err(JobError::Permanent(ref m)) if m.contains("redirected more than 5 times")),
        "{out:?}"
    );
    assert_eq!(requests.len(), 6);
}

#[test]
fn undated_entries_take_the_response_date() {
    let body = br#"<rss version="2.0"><channel><title>t</title><item><title>undated</title><link>https://blog.example.com/u</link></item></channel></rss>"#;
    let (out, _) = run_with(
        &job("https://blog.example.com/rss"),
        None,
        response(
            200,
            &[("Date", "Tue, 25 Nov 2025 08:00:00 GMT")],
            body.to_vec(),
        ),
    );
    assert_eq!(
        out.expect("run").batch.events[0].occurred_at,
        "2025-11-25T08:00:00Z"
    );
    let (out, _) = run_with(
        &job("https://blog.example.com/rss"),
        None,
        response(200, &[], body.to_vec()),
    );
    assert_eq!(
        out.expect("run").batch.events[0].occurred_at,
        "2025-12-01T00:00:00Z"
    );
}
