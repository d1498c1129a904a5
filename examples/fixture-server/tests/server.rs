//! The fixture server over real HTTP, in-process and as the binary scripts run.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use fixture_server::{
    Fault, Options, RecordedRequest, ServerHandle, github_fixtures, start, start_with,
};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;

const FEED: &str = "/users/octocat/events/public";

async fn server() -> ServerHandle {
    let (_, handle) = start(github_fixtures()).await.expect("server starts");
    handle
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn next_link(h: &HeaderMap) -> Option<String> {
    let link = header(h, LINK.as_str())?;
    link.split(", ")
        .find(|l| l.ends_with("rel=\"next\""))
        .map(|l| {
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
}

/// The body as JSON (reqwest's `json` feature is not enabled in the workspace).
async fn json_of<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> T {
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("json body")
}

fn ids(body: &[u8]) -> Vec<String> {
    let items: Vec<Value> = serde_json::from_slice(body).expect("array");
    items
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn serves_recorded_pages_and_links_to_itself() {
    let s = server().await;
    let c = client();
    let resp = c
        .get(format!("{}{FEED}?per_page=30", s.base_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    let body = resp.bytes().await.expect("body");
    let recorded =
        std::fs::read(github_fixtures().join("base/users/octocat/events/public/page-1.json"))
            .expect("fixture");
    assert_eq!(
        body.as_ref(),
        recorded.as_slice(),
        "page 1 is the recorded response verbatim"
    );
    let base = s.base_url();
    assert_eq!(
        header(&h, "link"),
        Some(
            format!(
                "<{base}{FEED}?per_page=30&page=2>; rel=\"next\", <{base}{FEED}?per_page=30&page=3>; rel=\"last\""
            )
            .as_str()
        )
    );
    assert!(header(&h, "etag").is_some_and(|e| e.starts_with("W/\"")));
    assert_eq!(header(&h, "x-ratelimit-limit"), Some("5000"));
    assert_eq!(header(&h, "x-ratelimit-remaining"), Some("4999"));
    assert!(header(&h, "x-ratelimit-reset").is_some());
    assert!(
        header(&h, "date").is_some(),
        "the plugin measures x-ratelimit-reset against Date"
    );

    // Walk the feed by Link headers.
    let mut url = Some(format!("{base}{FEED}"));
    let mut counts = Vec::new();
    let mut all = Vec::new();
    while let Some(u) = url {
        let resp = c.get(&u).send().await.expect("get");
        url = next_link(resp.headers());
        let body = resp.bytes().await.expect("body");
        counts.push(ids(&body).len());
        all.extend(ids(&body));
    }
    assert_eq!(counts, [30, 30, 17]);
    assert_eq!(all.first().map(String::as_str), Some("52917340118"));
    assert_eq!(all.last().map(String::as_str), Some("52864003846"));

    // Other page sizes re-slice the same events.
    let resp = c
        .get(format!("{base}{FEED}?per_page=100"))
        .send()
        .await
        .expect("get");
    assert!(resp.headers().get(LINK).is_none());
    assert_eq!(ids(&resp.bytes().await.expect("body")), all);
    let resp = c
        .get(format!("{base}{FEED}?per_page=50&page=2"))
        .send()
        .await
        .expect("get");
    assert_eq!(ids(&resp.bytes().await.expect("body")), all[50..]);
}

#[tokio::test]
async fn conditional_requests_get_304() {
    let s = server().await;
    let c = client();
    let url = format!("{}{FEED}", s.base_url());
    let etag = c.get(&url).send().await.expect("get").headers()["etag"].clone();
    let resp = c
        .get(&url)
        .header("If-None-Match", etag.clone())
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    s.set_fixture_set("octocat-later").expect("set");
    let resp = c
        .get(&url)
        .header("If-None-Match", etag)
        .send()
        .await
        .expect("get");
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "new activity changes the ETag"
    );
}

#[tokio::test]
async fn switching_fixture_sets_adds_new_activity() {
    let s = server().await;
    let c = client();
    let base = s.base_url();
    let first = |body: &[u8]| ids(body).first().cloned();
    let before = c
        .get(format!("{base}{FEED}"))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("b");
    let r = c
        .post(format!("{base}/__fixtures/octocat-later"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let after = c
        .get(format!("{base}{FEED}"))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("b");
    assert_eq!(first(&before).as_deref(), Some("52917340118"));
    assert_eq!(first(&after).as_deref(), Some("52921004577"));
    assert_eq!(
        ids(&after)[5..],
        ids(&before)[..25],
        "five new events on top"
    );
    // Feeds the set does not override come from base.
    let quiet = c
        .get(format!("{base}/users/quiet/events/public"))
        .send()
        .await
        .expect("get");
    assert_eq!(quiet.status(), StatusCode::OK);

    let sets: Value = c
        .get(format!("{base}/__fixtures"))
        .send()
        .await
        .map(json_of)
        .expect("get")
        .await;
    assert_eq!(sets["active"], "octocat-later");
    assert_eq!(sets["sets"], serde_json::json!(["base", "octocat-later"]));
    let r = c
        .post(format!("{base}/__fixtures/nope"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .post(format!("{base}/__reset"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let sets: Value = c
        .get(format!("{base}/__fixtures"))
        .send()
        .await
        .map(json_of)
        .expect("get")
        .await;
    assert_eq!(sets["active"], "base");
}

#[tokio::test]
async fn repository_and_organisation_feeds() {
    let s = server().await;
    let c = client();
    let base = s.base_url();
    let r = c
        .get(format!("{base}/repos/octocat/Hello-World/events"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        next_link(r.headers())
            .is_some_and(|l| l.ends_with("/repos/octocat/Hello-World/events?per_page=30&page=2"))
    );
    let r = c
        .get(format!("{base}/orgs/drowl-dev/events?per_page=100"))
        .send()
        .await
        .expect("get");
    assert_eq!(ids(&r.bytes().await.expect("b")).len(), 39);
    let r = c
        .get(format!(
            "{base}/repos/octocat/Old-Hello-World/events?per_page=30"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        header(r.headers(), "location"),
        Some("/repos/octocat/Hello-World/events?per_page=30")
    );
}

#[tokio::test]
async fn unknown_feeds_are_github_404s() {
    let s = server().await;
    let c = client();
    for path in [
        "/users/nobody/events/public",
        "/repos/octocat/nope/events",
        "/orgs/nope/events",
        "/rate_limit",
    ] {
        let r = c
            .get(format!("{}{path}", s.base_url()))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = json_of(r).await;
        assert_eq!(body["message"], "Not Found");
    }
}

#[tokio::test]
async fn scenarios() {
    let s = server().await;
    let c = client();
    let base = s.base_url();

    let r = c
        .get(format!("{base}/users/ratelimited/events/public"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(r.headers(), "x-ratelimit-remaining"), Some("0"));
    let reset: u64 = header(r.headers(), "x-ratelimit-reset")
        .and_then(|v| v.parse().ok())
        .expect("reset");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(reset > now && reset <= now + 61);

    let r = c
        .get(format!("{base}/users/throttled/events/public"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(r.headers(), "retry-after"), Some("30"));

    let url = format!("{base}/users/flaky/events/public");
    assert_eq!(
        c.get(&url).send().await.expect("get").status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let r = c.get(&url).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(ids(&r.bytes().await.expect("b")).len(), 3);
}

#[tokio::test]
async fn faults_fail_matching_requests_a_set_number_of_times() {
    let s = server().await;
    let c = client();
    let base = s.base_url();
    let fault =
        serde_json::json!({"path_prefix": "/users/octocat", "page": 2, "status": 502, "times": 1});
    let r = c
        .post(format!("{base}/__faults"))
        .header("content-type", "application/json")
        .body(fault.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    s.add_fault(Fault {
        path_prefix: "/orgs/".into(),
        page: None,
        status: 429,
        times: 2,
        headers: [("retry-after".to_owned(), "5".to_owned())].into(),
        body: None,
    });
    let get = |u: String| {
        let c = c.clone();
        async move { c.get(u).send().await.expect("get") }
    };
    assert_eq!(get(format!("{base}{FEED}")).await.status(), StatusCode::OK);
    assert_eq!(
        get(format!("{base}{FEED}?page=2")).await.status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        get(format!("{base}{FEED}?page=2")).await.status(),
        StatusCode::OK
    );
    let r = get(format!("{base}/orgs/drowl-dev/events")).await;
    assert_eq!(
        (r.status(), header(r.headers(), "retry-after")),
        (StatusCode::TOO_MANY_REQUESTS, Some("5"))
    );
    assert_eq!(
        get(format!("{base}/orgs/drowl-dev/events")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get(format!("{base}/orgs/drowl-dev/events")).await.status(),
        StatusCode::OK
    );
    let r = c
        .delete(format!("{base}/__faults"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn records_requests_without_secrets() {
    let (_, s) = start_with(Options {
        expect_token: Some("right".into()),
        ..Options::new(github_fixtures())
    })
    .await
    .expect("start");
    let c = client();
    let base = s.base_url();
    let send = |token: Option<&str>| {
        let mut r = c
            .get(format!("{base}{FEED}?per_page=30&page=2"))
            .header("User-Agent", "drowl-github-plugin")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(
        send(Some("wrong")).await.expect("get").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(Some("right")).await.expect("get").status(),
        StatusCode::OK
    );
    assert_eq!(send(None).await.expect("get").status(), StatusCode::OK);

    let recorded: Vec<RecordedRequest> = c
        .get(format!("{base}/__requests"))
        .send()
        .await
        .map(json_of)
        .expect("get")
        .await;
    assert_eq!(recorded, s.requests());
    assert_eq!(
        recorded.iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 200, 200]
    );
    let r = &recorded[1];
    assert_eq!((r.path.as_str(), r.page, r.per_page), (FEED, 2, 30));
    assert_eq!(r.query.as_deref(), Some("per_page=30&page=2"));
    assert_eq!(
        r.headers.get("authorization").map(String::as_str),
        Some("Bearer <redacted>")
    );
    assert_eq!(
        r.headers.get("user-agent").map(String::as_str),
        Some("drowl-github-plugin")
    );
    assert_eq!(r.set, "base");
    assert!(!recorded[2].headers.contains_key("authorization"));

    let r = c
        .delete(format!("{base}/__requests"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(s.requests().is_empty());
    s.shutdown().await.expect("clean shutdown");
}

#[test]
fn binary_prints_its_address_first() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fixture-server"))
        .args(["--port", "0", "--fixtures"])
        .arg(github_fixtures())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let read = child
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut line));
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .map(str::to_owned);
    let answer = addr.as_ref().and_then(|addr| {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        write!(
            s,
            "GET /users/quiet/events/public HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(matches!(read, Some(Ok(n)) if n > 0), "read the first line");
    let addr = addr.unwrap_or_else(|| panic!("first line was {line:?}"));
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    let answer = answer.expect("the server answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("[]\n") || answer.ends_with("[]"),
        "{answer}"
    );
}

#[tokio::test]
async fn refuses_a_missing_fixture_directory() {
    assert!(start("/nonexistent/fixtures".into()).await.is_err());
    let opts = Options {
        set: "nope".into(),
        ..Options::new(github_fixtures())
    };
    assert!(start_with(opts).await.is_err());
}
