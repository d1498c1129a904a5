//! # fixture-server
//!
//! Serves recorded GitHub REST API responses on loopback, the way `api.github.com`
//! would, so the github plugin can be run and tested with no network: point its
//! `api-base-url` at the server and `--allow-host` at its origin.
//!
//! ## Fixture layout
//!
//! The fixture root holds *sets* (directories). Inside a set, each feed is a directory
//! named like its API path holding the responses recorded at `per_page=30`:
//!
//! ```text
//! <root>/base/users/octocat/events/public/page-1.json, page-2.json, ...
//! <root>/base/repos/octocat/Hello-World/events/page-1.json
//! <root>/base/orgs/drowl-dev/events/page-1.json
//! <root>/octocat-later/users/octocat/events/public/page-1.json, ...
//! ```
//!
//! The active set starts as `base` and is overlaid on `base`: a feed the active set
//! lacks is served from `base`. Switching the set at runtime simulates new activity
//! between two runs.
//!
//! ## Endpoints
//!
//! - `GET /users/{user}/events/public` (and `/users/{user}/events`),
//!   `GET /repos/{owner}/{repo}/events`, `GET /orgs/{org}/events` with `per_page`
//!   (default 30, at most 100) and `page`: the recorded page verbatim at `per_page=30`,
//!   the same events re-sliced at other sizes; `Link` (`prev`/`next`/`last`/`first`,
//!   built from the request's `Host`), `ETag` with `If-None-Match` → 304,
//!   `x-ratelimit-*` headers; GitHub's 404 JSON for unknown feeds.
//! - Scenario names (as user, org or repository owner): `ratelimited` → 403 with
//!   `x-ratelimit-remaining: 0` and a reset a minute ahead; `throttled` → 403 with
//!   `retry-after: 30` (a secondary rate limit); `flaky` → 500 on the first request for
//!   each URL path, then the recorded feed; `slow` → answers `[]` after 3 seconds;
//!   `GET /repos/{owner}/Old-Hello-World/events` → 301 to `.../Hello-World/events`.
//! - `GET /__requests` (every API request served, as JSON), `DELETE /__requests`.
//! - `GET /__fixtures` (active set and available sets), `POST /__fixtures/{set}`.
//! - `POST /__faults` (a [`Fault`] as JSON: fail matching requests), `GET`/`DELETE /__faults`.
//! - `POST /__reset`: back to the initial set, no requests, faults or flaky state.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The page size the fixtures were recorded at (GitHub's default).
pub const RECORDED_PER_PAGE: usize = 30;
/// The set that is active at start and that other sets overlay.
pub const BASE_SET: &str = "base";
/// How long the `slow` scenario waits before answering.
pub const SLOW_DELAY: Duration = Duration::from_secs(3);
/// The rate limit the server advertises (GitHub's limit for authenticated requests).
const RATE_LIMIT: u32 = 5_000;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// The fixture root (the directory holding the sets).
    pub fixtures: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The set active at start (and after `POST /__reset`).
    pub set: String,
    /// When set, a request carrying any other bearer token gets GitHub's 401, so tests
    /// can check that the plugin's secret arrives intact. Requests without a token are
    /// served, as GitHub serves anonymous requests.
    pub expect_token: Option<String>,
}

impl Options {
    /// Defaults: a random port, the `base` set, any token accepted.
    pub fn new(fixtures: impl Into<PathBuf>) -> Self {
        Self {
            fixtures: fixtures.into(),
            port: 0,
            set: BASE_SET.to_owned(),
            expect_token: None,
        }
    }
}

/// One API request the server answered, as `GET /__requests` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query (`/users/octocat/events/public`).
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The `page` the request resolved to.
    pub page: usize,
    /// The `per_page` the request resolved to.
    pub per_page: usize,
    /// Request headers with lower-case names; `authorization` keeps only its scheme.
    pub headers: BTreeMap<String, String>,
    /// The status the server answered with.
    pub status: u16,
    /// The fixture set that was active.
    pub set: String,
    /// Milliseconds since the server started.
    pub at_ms: u64,
}

/// A failure to inject: matching requests get this answer instead of the fixture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Request paths starting with this match (`/users/octocat`).
    pub path_prefix: String,
    /// Only this page (1-based) matches, when set.
    #[serde(default)]
    pub page: Option<usize>,
    /// The status to answer with.
    pub status: u16,
    /// How many matching requests fail before the fault is used up.
    #[serde(default = "one")]
    pub times: u32,
    /// Extra response headers (`retry-after`, `x-ratelimit-remaining`, ...).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON body; GitHub's `{"message": ...}` for the status when absent.
    #[serde(default)]
    pub body: Option<Value>,
}

fn one() -> u32 {
    1
}

#[derive(Debug)]
struct Inner {
    set: String,
    requests: Vec<RecordedRequest>,
    faults: Vec<Fault>,
    /// URL paths the `flaky` scenario already failed once.
    flaky_failed: BTreeSet<String>,
    /// Requests counted against the advertised rate limit.
    used: u32,
}

#[derive(Debug)]
struct App {
    root: PathBuf,
    initial_set: String,
    expect_token: Option<String>,
    started: Instant,
    /// When the advertised rate-limit window resets (Unix seconds).
    reset_at: u64,
    fallback_host: String,
    inner: Mutex<Inner>,
}

impl App {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` inconsistent in a way
        // that matters to a test server; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sets(&self) -> Vec<String> {
        let mut sets: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        sets.sort();
        sets
    }
}

/// A running server; dropping it stops the server.
#[derive(Debug)]
pub struct ServerHandle {
    app: Arc<App>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the value for the plugin's `api-base-url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every API request served so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.app.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.app.lock().requests.clear();
    }

    /// Makes `set` the active fixture set (overlaid on `base`).
    pub fn set_fixture_set(&self, set: &str) -> anyhow::Result<()> {
        switch_set(&self.app, set)
    }

    /// Injects a failure.
    pub fn add_fault(&self, fault: Fault) {
        self.app.lock().faults.push(fault);
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .context("server task panicked")?
                .context("server failed")?;
        }
        Ok(())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn switch_set(app: &App, set: &str) -> anyhow::Result<()> {
    anyhow::ensure!(valid_segment(set), "not a fixture set name: {set:?}");
    let dir = app.root.join(set);
    anyhow::ensure!(
        dir.is_dir(),
        "no fixture set {set:?} in {}",
        app.root.display()
    );
    app.lock().set = set.to_owned();
    Ok(())
}

/// Starts the server on a random loopback port with the `base` set active, for tests
/// that run it in-process.
pub async fn start(fixtures: PathBuf) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    start_with(Options::new(fixtures)).await
}

/// Starts the server with explicit options.
pub async fn start_with(options: Options) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let root = options.fixtures;
    anyhow::ensure!(
        root.is_dir(),
        "fixture directory {} does not exist",
        root.display()
    );
    anyhow::ensure!(
        valid_segment(&options.set) && root.join(&options.set).is_dir(),
        "fixture set {:?} is not a directory in {}",
        options.set,
        root.display()
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, options.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        root,
        initial_set: options.set.clone(),
        expect_token: options.expect_token,
        started: Instant::now(),
        reset_at: unix_now() + 3_600,
        fallback_host: addr.to_string(),
        inner: Mutex::new(Inner {
            set: options.set,
            requests: Vec::new(),
            faults: Vec::new(),
            flaky_failed: BTreeSet::new(),
            used: 0,
        }),
    });
    let (tx, rx) = oneshot::channel::<()>();
    let router = router(app.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    Ok((
        addr,
        ServerHandle {
            app,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        },
    ))
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/users/{user}/events/public", get(user_events))
        .route("/users/{user}/events", get(user_events))
        .route("/repos/{owner}/{repo}/events", get(repo_events))
        .route("/orgs/{org}/events", get(org_events))
        .route("/__requests", get(list_requests).delete(clear_requests))
        .route("/__fixtures", get(list_sets))
        .route("/__fixtures/{set}", post(activate_set))
        .route(
            "/__faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/__reset", post(reset))
        .fallback(not_found_fallback)
        .with_state(app)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// GitHub's error body shape.
fn github_error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn not_found_fallback() -> Response {
    github_error(StatusCode::NOT_FOUND, "Not Found")
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    per_page: Option<String>,
    page: Option<String>,
}

impl PageQuery {
    /// GitHub treats missing or unparsable values as the defaults and caps `per_page`.
    fn resolve(&self) -> (usize, usize) {
        let per_page = self
            .per_page
            .as_deref()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .map_or(RECORDED_PER_PAGE, |n| n.min(100));
        let page = self
            .page
            .as_deref()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        (per_page, page)
    }
}

/// What a feed request asks for.
struct FeedRequest {
    /// Path segments after the root (`["users", "octocat", "events", "public"]`).
    segments: Vec<String>,
    /// The login that scenario names are matched against.
    subject: String,
    uri: Uri,
    headers: HeaderMap,
    query: PageQuery,
}

async fn user_events(
    State(app): State<Arc<App>>,
    UrlPath(user): UrlPath<String>,
    Query(query): Query<PageQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // `/users/{u}/events` serves the public feed too: the fixtures hold public events only.
    let segments = vec![
        "users".into(),
        user.clone(),
        "events".into(),
        "public".into(),
    ];
    serve_feed(
        &app,
        FeedRequest {
            segments,
            subject: user,
            uri,
            headers,
            query,
        },
    )
    .await
}

async fn repo_events(
    State(app): State<Arc<App>>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(query): Query<PageQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let segments = vec!["repos".into(), owner.clone(), repo, "events".into()];
    serve_feed(
        &app,
        FeedRequest {
            segments,
            subject: owner,
            uri,
            headers,
            query,
        },
    )
    .await
}

async fn org_events(
    State(app): State<Arc<App>>,
    UrlPath(org): UrlPath<String>,
    Query(query): Query<PageQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let segments = vec!["orgs".into(), org.clone(), "events".into()];
    serve_feed(
        &app,
        FeedRequest {
            segments,
            subject: org,
            uri,
            headers,
            query,
        },
    )
    .await
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The recorded pages of a feed: the active set first, then `base`.
fn load_pages(app: &App, set: &str, segments: &[String]) -> Option<Vec<Vec<u8>>> {
    let rel: PathBuf = segments.iter().collect();
    let dir = [set, BASE_SET]
        .iter()
        .map(|s| app.root.join(s).join(&rel))
        .find(|d| d.is_dir())?;
    let mut pages = Vec::new();
    for n in 1.. {
        match std::fs::read(dir.join(format!("page-{n}.json"))) {
            Ok(bytes) => pages.push(bytes),
            Err(_) => break,
        }
    }
    (!pages.is_empty()).then_some(pages)
}

/// The body for `page` at `per_page`, and the number of the last page.
fn page_body(pages: &[Vec<u8>], per_page: usize, page: usize) -> Result<(Vec<u8>, usize), String> {
    if per_page == RECORDED_PER_PAGE {
        // The recorded response, byte for byte.
        let body = pages
            .get(page - 1)
            .cloned()
            .unwrap_or_else(|| b"[]".to_vec());
        return Ok((body, pages.len()));
    }
    // Re-slice the same events; RawValue keeps every item's bytes as recorded.
    let mut all: Vec<Box<RawValue>> = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        let items: Vec<Box<RawValue>> = serde_json::from_slice(p)
            .map_err(|e| format!("fixture page-{} is not a JSON array: {e}", i + 1))?;
        all.extend(items);
    }
    let last = all.len().div_ceil(per_page).max(1);
    let slice: Vec<&RawValue> = all
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|b| &**b)
        .collect();
    let body = serde_json::to_vec(&slice).map_err(|e| e.to_string())?;
    Ok((body, last))
}

fn link_header(
    host: &str,
    path: &str,
    per_page: usize,
    page: usize,
    last: usize,
) -> Option<String> {
    let link = |p: usize, rel: &str| {
        format!("<http://{host}{path}?per_page={per_page}&page={p}>; rel=\"{rel}\"")
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link((page - 1).min(last), "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

fn record_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or("<non-ascii>");
            let value = if *name == header::AUTHORIZATION {
                // Keep the scheme so tests can see a token was sent, never the token.
                format!(
                    "{} <redacted>",
                    value.split_whitespace().next().unwrap_or("")
                )
            } else {
                value.to_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

fn with_headers(mut resp: Response, headers: &[(String, String)]) -> Response {
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(k.as_str()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

async fn serve_feed(app: &App, req: FeedRequest) -> Response {
    let (per_page, page) = req.query.resolve();
    let path = req.uri.path().to_owned();
    let set = app.lock().set.clone();
    let resp = if req.segments.iter().all(|s| valid_segment(s)) {
        answer(app, &req, &set, &path, per_page, page).await
    } else {
        github_error(StatusCode::NOT_FOUND, "Not Found")
    };
    let record = RecordedRequest {
        method: Method::GET.to_string(),
        path,
        query: req.uri.query().map(str::to_owned),
        page,
        per_page,
        headers: record_headers(&req.headers),
        status: resp.status().as_u16(),
        set,
        at_ms: u64::try_from(app.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    app.lock().requests.push(record);
    resp
}

async fn answer(
    app: &App,
    req: &FeedRequest,
    set: &str,
    path: &str,
    per_page: usize,
    page: usize,
) -> Response {
    // Injected faults come first.
    let fault = {
        let mut inner = app.lock();
        let found = inner.faults.iter_mut().find(|f| {
            f.times > 0 && path.starts_with(&f.path_prefix) && f.page.is_none_or(|p| p == page)
        });
        found.map(|f| {
            f.times -= 1;
            f.clone()
        })
    };
    if let Some(f) = fault {
        let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let resp = match f.body {
            Some(body) => (
                status,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body.to_string(),
            )
                .into_response(),
            None => github_error(status, status.canonical_reason().unwrap_or("Error")),
        };
        let headers: Vec<(String, String)> = f.headers.into_iter().collect();
        return with_headers(resp, &headers);
    }

    let token = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split_once(' ').map_or(v, |(_, t)| t).trim().to_owned());
    if let (Some(expected), Some(token)) = (&app.expect_token, &token)
        && expected != token
    {
        return github_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }

    match req.subject.as_str() {
        "ratelimited" => {
            let resp = github_error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated \
                 requests get a higher rate limit. Check out the documentation for more details.)",
            );
            let reset = (unix_now() + 60).to_string();
            return with_headers(
                resp,
                &[
                    ("x-ratelimit-limit".into(), "60".into()),
                    ("x-ratelimit-remaining".into(), "0".into()),
                    ("x-ratelimit-reset".into(), reset),
                    ("x-ratelimit-used".into(), "60".into()),
                    ("x-ratelimit-resource".into(), "core".into()),
                ],
            );
        }
        "throttled" => {
            let resp = github_error(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            return with_headers(resp, &[("retry-after".into(), "30".into())]);
        }
        "flaky" => {
            let first = app.lock().flaky_failed.insert(path.to_owned());
            if first {
                return github_error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
            }
        }
        "slow" => {
            tokio::time::sleep(SLOW_DELAY).await;
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                "[]",
            )
                .into_response();
        }
        _ => {}
    }
    if req.segments.first().map(String::as_str) == Some("repos")
        && req.segments.get(2).map(String::as_str) == Some("Old-Hello-World")
    {
        let target = format!(
            "/repos/{}/Hello-World/events{}",
            req.segments[1],
            req.uri.query().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let body = json!({"message": "Moved Permanently", "url": target, "documentation_url": "https://docs.github.com/rest"});
        return (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, target)],
            body.to_string(),
        )
            .into_response();
    }

    let Some(pages) = load_pages(app, set, &req.segments) else {
        return github_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let (body, last) = match page_body(&pages, per_page, page) {
        Ok(b) => b,
        Err(e) => return github_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let etag = format!("W/\"{:016x}\"", fnv1a(&body));
    if let Some(inm) = req
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && inm.split(',').any(|t| t.trim() == etag)
    {
        // GitHub does not count 304s against the rate limit.
        return with_headers(
            StatusCode::NOT_MODIFIED.into_response(),
            &[
                ("etag".into(), etag),
                ("x-poll-interval".into(), "60".into()),
            ],
        );
    }
    let used = {
        let mut inner = app.lock();
        inner.used = inner.used.saturating_add(1);
        inner.used
    };
    let host = req
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&app.fallback_host)
        .to_owned();
    let mut headers = vec![
        (
            "content-type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        ),
        (
            "cache-control".to_owned(),
            "private, max-age=60, s-maxage=60".to_owned(),
        ),
        ("etag".to_owned(), etag),
        ("x-poll-interval".to_owned(), "60".to_owned()),
        (
            "x-github-api-version-selected".to_owned(),
            "2022-11-28".to_owned(),
        ),
        ("x-ratelimit-limit".to_owned(), RATE_LIMIT.to_string()),
        (
            "x-ratelimit-remaining".to_owned(),
            RATE_LIMIT.saturating_sub(used).to_string(),
        ),
        ("x-ratelimit-reset".to_owned(), app.reset_at.to_string()),
        ("x-ratelimit-used".to_owned(), used.to_string()),
        ("x-ratelimit-resource".to_owned(), "core".to_owned()),
    ];
    if let Some(link) = link_header(&host, path, per_page, page, last) {
        headers.push(("link".to_owned(), link));
    }
    with_headers((StatusCode::OK, Body::from(body)).into_response(), &headers)
}

async fn list_requests(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.lock().requests.clone()).into_response()
}

async fn clear_requests(State(app): State<Arc<App>>) -> StatusCode {
    app.lock().requests.clear();
    StatusCode::NO_CONTENT
}

async fn list_sets(State(app): State<Arc<App>>) -> Response {
    let active = app.lock().set.clone();
    axum::Json(json!({ "active": active, "sets": app.sets() })).into_response()
}

async fn activate_set(State(app): State<Arc<App>>, UrlPath(set): UrlPath<String>) -> Response {
    match switch_set(&app, &set) {
        Ok(()) => axum::Json(json!({ "active": set })).into_response(),
        Err(e) => github_error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

async fn list_faults(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.lock().faults.clone()).into_response()
}

async fn add_fault(
    State(app): State<Arc<App>>,
    axum::Json(fault): axum::Json<Fault>,
) -> StatusCode {
    app.lock().faults.push(fault);
    StatusCode::CREATED
}

async fn clear_faults(State(app): State<Arc<App>>) -> StatusCode {
    app.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn reset(State(app): State<Arc<App>>) -> StatusCode {
    let mut inner = app.lock();
    inner.set = app.initial_set.clone();
    inner.requests.clear();
    inner.faults.clear();
    inner.flaky_failed.clear();
    inner.used = 0;
    StatusCode::NO_CONTENT
}

/// The fixture root of the github plugin in this repository, for tests.
pub fn github_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/github/fixtures")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_match_github_shape() {
        assert_eq!(
            link_header("127.0.0.1:9", "/users/octocat/events/public", 30, 1, 3).as_deref(),
            Some(
                "<http://127.0.0.1:9/users/octocat/events/public?per_page=30&page=2>; rel=\"next\", \
                 <http://127.0.0.1:9/users/octocat/events/public?per_page=30&page=3>; rel=\"last\""
            )
        );
        let mid = link_header("h", "/p", 30, 2, 3).unwrap_or_default();
        assert!(mid.contains("page=1>; rel=\"prev\"") && mid.contains("page=3>; rel=\"next\""));
        assert!(mid.ends_with("page=1>; rel=\"first\""));
        let last = link_header("h", "/p", 30, 3, 3).unwrap_or_default();
        assert!(!last.contains("next") && last.contains("rel=\"prev\""));
        assert_eq!(link_header("h", "/p", 30, 1, 1), None);
    }

    #[test]
    fn query_defaults_and_caps() {
        let q = |pp: Option<&str>, p: Option<&str>| {
            PageQuery {
                per_page: pp.map(str::to_owned),
                page: p.map(str::to_owned),
            }
            .resolve()
        };
        assert_eq!(q(None, None), (30, 1));
        assert_eq!(q(Some("500"), Some("0")), (100, 1));
        assert_eq!(q(Some("x"), Some("2")), (30, 2));
    }

    #[test]
    fn reslicing_keeps_items_verbatim() {
        let pages = vec![
            b"[ {\"id\": \"3\"},\n {\"id\":\"2\"} ]".to_vec(),
            b"[{\"id\":  \"1\"}]".to_vec(),
        ];
        let (body, last) = page_body(&pages, 2, 2).unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&body), "[{\"id\":  \"1\"}]");
        assert_eq!(last, 2);
        let (body, _) = page_body(&pages, 2, 1).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&body),
            "[{\"id\": \"3\"},{\"id\":\"2\"}]"
        );
        let (body, last) = page_body(&pages, 30, 5).unwrap_or_default();
        assert_eq!((body.as_slice(), last), (b"[]".as_slice(), 2));
    }
}
