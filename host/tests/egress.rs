//! SSRF and resource tests for the outbound HTTP engine, against real axum servers on
//! loopback (rows 12-18 of the security matrix).
//!
//! 127.0.0.1 stands for "private" and, where a test needs a "public" address, the
//! operator exception `127.0.0.2/32` makes 127.0.0.2 one. Names are resolved by a test
//! resolver so `evil.test` can point anywhere and change its answer between lookups.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, any};
use axum::serve::ListenerExt;
use drowl_host::capabilities::http::egress::{
    EgressClient, EgressError, EgressLimits, EgressPolicy, OutboundRequest, OutboundResponse,
    Resolver,
};
use futures::stream;
use ipnet::IpNet;
use tokio::net::TcpListener;

/// What a test server saw.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted: the proof that nothing reached a server.
    connections: AtomicUsize,
    /// Requests handled.
    requests: AtomicUsize,
    /// Hits on `/target`, the redirect destination.
    target_hits: AtomicUsize,
    /// Body bytes the streaming handlers produced.
    streamed: AtomicU64,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

impl Server {
    fn port(&self) -> u16 {
        self.addr.port()
    }
    fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }
    fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }
}

const BIG: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;

fn router(seen: Arc<Seen>) -> Router {
    let counted = |seen: &Arc<Seen>| {
        seen.requests.fetch_add(1, Ordering::SeqCst);
    };
    let s = seen.clone();
    let echo = move |method: Method, headers: HeaderMap, body: Bytes| {
        counted(&s);
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            let text = format!(
                "{method} x-test={} ua={} ae={} body={}",
                header("x-test"),
                header("user-agent"),
                header("accept-encoding"),
                String::from_utf8_lossy(&body)
            );
            ([(header::CONNECTION, "close")], text)
        }
    };
    let s = seen.clone();
    let redirect = move |headers: HeaderMap| {
        counted(&s);
        async move {
            let to = headers
                .get("x-redirect-to")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("/target")
                .to_owned();
            (StatusCode::FOUND, [(header::LOCATION, to)], "moved")
        }
    };
    let s = seen.clone();
    let target = move || {
        counted(&s);
        s.target_hits.fetch_add(1, Ordering::SeqCst);
        async { "target" }
    };
    let s = seen.clone();
    let gzip = move || {
        counted(&s);
        async {
            // Not valid gzip: a client that tried to inflate it would fail.
            (
                [(header::CONTENT_ENCODING, "gzip")],
                vec![0x1f, 0x8b, 8, 0, 1, 2, 3],
            )
        }
    };
    let s = seen.clone();
    let big_stream = move || {
        counted(&s);
        let s = s.clone();
        async move { Body::from_stream(endless(s, BIG)) }
    };
    let s = seen.clone();
    let big_declared = move || {
        counted(&s);
        let s = s.clone();
        async move {
            Response::builder()
                .header(header::CONTENT_LENGTH, BIG)
                .body(Body::from_stream(endless(s, BIG)))
                .unwrap_or_default()
        }
    };
    let s = seen.clone();
    let sized = move |axum::extract::Path(n): axum::extract::Path<usize>| {
        counted(&s);
        async move { vec![b'x'; n] }
    };
    let s = seen.clone();
    let slow = move || {
        counted(&s);
        async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            "late"
        }
    };
    let s = seen.clone();
    let trickle = move || {
        counted(&s);
        async {
            let drip = stream::unfold(0u32, |n| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                (n < 200).then(|| (Ok::<_, io::Error>(Bytes::from_static(b"x")), n + 1))
            });
            Body::from_stream(drip).into_response()
        }
    };
    Router::new()
        .route("/echo", any(echo))
        .route("/redirect", routing::get(redirect))
        .route("/target", routing::get(target))
        .route("/gzip", routing::get(gzip))
        .route("/big-stream", routing::get(big_stream))
        .route("/big-declared", routing::get(big_declared))
        .route("/sized/{n}", routing::get(sized))
        .route("/slow", routing::get(slow))
        .route("/trickle", routing::get(trickle))
}

/// Up to `total` bytes in 64 KiB chunks, counting what was actually produced.
fn endless(
    seen: Arc<Seen>,
    total: u64,
) -> impl futures::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let chunk = Bytes::from(vec![b'z'; CHUNK]);
    stream::unfold(0u64, move |sent| {
        let seen = seen.clone();
        let chunk = chunk.clone();
        async move {
            if sent >= total {
                return None;
            }
            seen.streamed.fetch_add(CHUNK as u64, Ordering::SeqCst);
            Some((Ok(chunk), sent + CHUNK as u64))
        }
    })
}

async fn serve(listener: TcpListener) -> Server {
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(Seen::default());
    let counter = seen.clone();
    let listener = listener.tap_io(move |_| {
        counter.connections.fetch_add(1, Ordering::SeqCst);
    });
    let app = router(seen.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, seen }
}

async fn server_on(ip: &str) -> Server {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind test server");
    serve(listener).await
}

/// Two servers on the same port, one on 127.0.0.2 ("public") and one on 127.0.0.1.
async fn twin_servers() -> (Server, Server) {
    for _ in 0..50 {
        let public = TcpListener::bind("127.0.0.2:0")
            .await
            .expect("bind 127.0.0.2");
        let port = public.local_addr().expect("addr").port();
        if let Ok(private) = TcpListener::bind(("127.0.0.1", port)).await {
            return (serve(public).await, serve(private).await);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

/// A resolver whose answers the test scripts; each call takes the next answer in turn.
#[derive(Default)]
struct TestResolver {
    answers: HashMap<String, Vec<Vec<IpAddr>>>,
    calls: AtomicUsize,
    lookups: std::sync::Mutex<Vec<String>>,
}

impl TestResolver {
    fn new(entries: &[(&str, &[&[&str]])]) -> Arc<Self> {
        let answers = entries
            .iter()
            .map(|(host, answers)| {
                let answers = answers
                    .iter()
                    .map(|ips| ips.iter().map(|ip| ip.parse().expect("ip")).collect())
                    .collect();
                ((*host).to_owned(), answers)
            })
            .collect();
        Arc::new(TestResolver {
            answers,
            ..Default::default()
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Resolver for TestResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.lookups.lock().expect("lock").push(host.to_owned());
        let answers = self
            .answers
            .get(host)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN"))?;
        Ok(answers[n % answers.len()].clone())
    }
}

fn nets(networks: &[&str]) -> Vec<IpNet> {
    networks.iter().map(|n| n.parse().expect("net")).collect()
}

fn policy(declared: &[String], networks: &[&str], limits: EgressLimits) -> EgressPolicy {
    EgressPolicy::new(
        declared,
        &["*".to_owned()],
        &HashMap::new(),
        nets(networks),
        limits,
    )
    .expect("policy")
}

fn client_with(
    declared: &[String],
    networks: &[&str],
    limits: EgressLimits,
    resolver: Arc<dyn Resolver>,
) -> EgressClient {
    EgressClient::with_resolver(policy(declared, networks, limits), resolver).expect("client")
}

fn get(url: impl Into<String>) -> OutboundRequest {
    OutboundRequest {
        method: "GET".to_owned(),
        url: url.into(),
        ..Default::default()
    }
}

fn ok(result: Result<OutboundResponse, EgressError>) -> OutboundResponse {
    result.unwrap_or_else(|err| panic!("expected a response, got {err:?}"))
}

fn denied(result: Result<OutboundResponse, EgressError>) -> String {
    match result {
        Err(EgressError::Denied(msg)) => msg,
        other => panic!("expected Denied, got {other:?}"),
    }
}

fn header<'a>(response: &'a OutboundResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn allowed_request_works_when_loopback_is_allowed() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let resolver = TestResolver::new(&[("fixtures.test", &[&["127.0.0.1"]])]);
    let declared = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://fixtures.test:{port}"),
    ];
    let client = client_with(
        &declared,
        &["127.0.0.0/8"],
        EgressLimits::default(),
        resolver.clone(),
    );
    let job = client.new_job("job-allowed");

    let post = OutboundRequest {
        method: "POST".to_owned(),
        url: format!("http://127.0.0.1:{port}/echo?token=abc"),
        headers: vec![("X-Test".to_owned(), "yes".to_owned())],
        body: Some(b"payload".to_vec()),
        timeout_ms: Some(5_000),
    };
    let response = ok(client.send(&job, post, None).await);
    assert_eq!(response.status, 200);
    let text = String::from_utf8_lossy(&response.body);
    assert!(text.starts_with("POST x-test=yes ua=drowl-host/"), "{text}");
    assert!(
        text.contains("ae=- body=payload"),
        "no Accept-Encoding added: {text}"
    );

    // The same server through a declared name; and a literal in another notation.
    let by_name = ok(client
        .send(
            &job,
            get(format!("http://FIXTURES.test.:{port}/echo")),
            None,
        )
        .await);
    assert_eq!(by_name.status, 200);
    assert_eq!(
        resolver.lookups.lock().expect("lock").as_slice(),
        ["fixtures.test"]
    );
    let hex = ok(client
        .send(&job, get(format!("http://0x7f.1:{port}/echo")), None)
        .await);
    assert_eq!(hex.status, 200);
    assert_eq!(server.requests(), 3);

    let records = job.records();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0].origin.as_deref(),
        Some(format!("http://127.0.0.1:{port}").as_str())
    );
    assert_eq!(records[0].method.as_deref(), Some("POST"));
    assert_eq!(records[0].status, Some(200));
    assert_eq!(records[0].bytes_out, 7);
    assert_eq!(records[0].bytes_in, response.body.len() as u64);
    assert_eq!(records[0].remote_addr, Some(server.addr));
    assert_eq!(
        records[1].origin.as_deref(),
        Some(format!("http://fixtures.test:{port}").as_str())
    );
    let usage = job.usage();
    assert_eq!((usage.requests, usage.failed, usage.bytes_out), (3, 0, 7));
}

#[tokio::test]
async fn literal_ips_are_denied_without_the_loopback_exception() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let declared = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://0.0.0.0:{port}"),
        format!("http://169.254.169.254:{port}"),
        format!("http://10.0.0.1:{port}"),
    ];
    let resolver = TestResolver::new(&[]);
    let client = client_with(&declared, &[], EgressLimits::default(), resolver.clone());
    let job = client.new_job("job-literals");
    let cases = [
        ("127.0.0.1", "127.0.0.1 is loopback"),
        ("2130706433", "127.0.0.1 is loopback"),
        ("0x7f.1", "127.0.0.1 is loopback"),
        ("0x7f000001", "127.0.0.1 is loopback"),
        ("017700000001", "127.0.0.1 is loopback"),
        ("127.1", "127.0.0.1 is loopback"),
        ("[::1]", "::1 is loopback"),
        (
            "[::ffff:127.0.0.1]",
            "::ffff:127.0.0.1 embeds 127.0.0.1, which is loopback",
        ),
        (
            "[::ffff:7f00:1]",
            "::ffff:127.0.0.1 embeds 127.0.0.1, which is loopback",
        ),
        ("0.0.0.0", "0.0.0.0 is unspecified"),
        ("0", "0.0.0.0 is unspecified"),
        (
            "169.254.169.254",
            "169.254.169.254 is link-local, where cloud metadata",
        ),
        ("10.0.0.1", "10.0.0.1 is private"),
    ];
    for (host, want) in cases {
        let msg = denied(
            client
                .send(&job, get(format!("http://{host}:{port}/echo")), None)
                .await,
        );
        assert!(msg.contains(want), "{host}: {msg:?} lacks {want:?}");
    }
    assert_eq!(server.connections(), 0, "nothing reached the server");
    assert_eq!(resolver.calls(), 0);
    assert_eq!(job.usage().denied, cases.len() as u32);
}

#[tokio::test]
async fn declared_name_resolving_to_loopback_is_denied() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let resolver = TestResolver::new(&[("evil.test", &[&["127.0.0.1", "::1"]])]);
    let declared = vec![format!("http://evil.test:{port}")];
    let client = client_with(&declared, &[], EgressLimits::default(), resolver.clone());
    let job = client.new_job("job-evil");
    let msg = denied(
        client
            .send(&job, get(format!("http://evil.test:{port}/echo")), None)
            .await,
    );
    assert_eq!(
        msg,
        "evil.test resolves only to refused addresses: 127.0.0.1 is loopback (127.0.0.0/8); ::1 is loopback (::1)"
    );
    assert_eq!(resolver.calls(), 1);
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn localhost_is_denied_with_the_system_resolver() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let declared = vec![format!("http://localhost:{port}")];
    let client =
        EgressClient::new(policy(&declared, &[], EgressLimits::default())).expect("client");
    let job = client.new_job("job-localhost");
    let msg = denied(
        client
            .send(&job, get(format!("http://localhost:{port}/echo")), None)
            .await,
    );
    assert!(
        msg.starts_with("localhost resolves only to refused addresses:"),
        "{msg}"
    );
    assert!(msg.contains("is loopback"), "{msg}");
    assert_eq!(server.connections(), 0);

    // With the exception on, the same request goes through.
    let allowed = EgressClient::new(policy(
        &declared,
        &["127.0.0.0/8", "::1/128"],
        EgressLimits::default(),
    ))
    .expect("client");
    let response = ok(allowed
        .send(
            &allowed.new_job("job-2"),
            get(format!("http://localhost:{port}/echo")),
            None,
        )
        .await);
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn undeclared_or_ungranted_hosts_are_denied_before_dns() {
    let resolver = TestResolver::new(&[
        ("declared.test", &[&["127.0.0.1"]]),
        ("undeclared.test", &[&["127.0.0.1"]]),
        ("ungranted.test", &[&["127.0.0.1"]]),
    ]);
    let declared = vec![
        "http://declared.test".to_owned(),
        "http://ungranted.test".to_owned(),
    ];
    let granted = vec![
        "http://declared.test".to_owned(),
        "http://undeclared.test".to_owned(),
    ];
    let policy = EgressPolicy::new(
        &declared,
        &granted,
        &HashMap::new(),
        nets(&["127.0.0.0/8"]),
        EgressLimits::default(),
    )
    .expect("policy");
    let client = EgressClient::with_resolver(policy, resolver.clone()).expect("client");
    let job = client.new_job("job-undeclared");
    for url in [
        "http://undeclared.test/",
        "http://ungranted.test/",
        "https://declared.test/",
        "http://declared.test:8080/",
        "http://a.declared.test/",
        "http://127.0.0.1/",
    ] {
        let msg = denied(client.send(&job, get(url), None).await);
        assert!(
            msg.contains("not an origin this plugin declared and the operator granted"),
            "{url}: {msg}"
        );
    }
    assert_eq!(resolver.calls(), 0, "no lookup for a denied origin");

    // Header tricks are rejected before anything else, too.
    let mut with_host = get("http://declared.test/");
    with_host
        .headers
        .push(("Host".to_owned(), "undeclared.test".to_owned()));
    assert!(matches!(
        client.send(&job, with_host, None).await,
        Err(EgressError::InvalidRequest(msg)) if msg.contains("`host`")
    ));
    assert!(matches!(
        client.send(&job, get("ftp://declared.test/"), None).await,
        Err(EgressError::InvalidRequest(_))
    ));
    assert_eq!(resolver.calls(), 0);
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let resolver = TestResolver::new(&[("undeclared.test", &[&["127.0.0.1"]])]);
    let declared = vec![format!("http://127.0.0.1:{port}")];
    let client = client_with(
        &declared,
        &["127.0.0.0/8"],
        EgressLimits::default(),
        resolver.clone(),
    );
    let job = client.new_job("job-redirect");

    let elsewhere = format!("http://undeclared.test:{port}/target");
    let mut req = get(format!("http://127.0.0.1:{port}/redirect"));
    req.headers
        .push(("x-redirect-to".to_owned(), elsewhere.clone()));
    let response = ok(client.send(&job, req, None).await);
    assert_eq!(response.status, 302);
    assert_eq!(header(&response, "location"), Some(elsewhere.as_str()));
    assert_eq!(response.body, b"moved");

    // Same-origin redirects are not followed either.
    let same = ok(client
        .send(&job, get(format!("http://127.0.0.1:{port}/redirect")), None)
        .await);
    assert_eq!(same.status, 302);
    assert_eq!(server.seen.target_hits.load(Ordering::SeqCst), 0);

    // The plugin following the redirect itself is checked like any request.
    denied(client.send(&job, get(elsewhere), None).await);
    assert_eq!(resolver.calls(), 0);
    assert_eq!(server.seen.target_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bodies_are_never_decompressed() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let declared = vec![format!("http://127.0.0.1:{port}")];
    let client = client_with(
        &declared,
        &["127.0.0.0/8"],
        EgressLimits::default(),
        TestResolver::new(&[]),
    );
    let mut req = get(format!("http://127.0.0.1:{port}/gzip"));
    req.headers
        .push(("Accept-Encoding".to_owned(), "gzip".to_owned()));
    let response = ok(client.send(&client.new_job("job-gzip"), req, None).await);
    assert_eq!(header(&response, "content-encoding"), Some("gzip"));
    assert_eq!(response.body, [0x1f, 0x8b, 8, 0, 1, 2, 3]);
}

#[tokio::test]
async fn oversized_responses_are_cut_off_without_reading_them() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let cap = 256 * 1024;
    let limits = EgressLimits {
        max_response_bytes: cap,
        ..EgressLimits::default()
    };
    let declared = vec![format!("http://127.0.0.1:{port}")];
    let client = client_with(&declared, &["127.0.0.0/8"], limits, TestResolver::new(&[]));
    let job = client.new_job("job-big");

    let started = Instant::now();
    let result = client
        .send(
            &job,
            get(format!("http://127.0.0.1:{port}/big-stream")),
            None,
        )
        .await;
    assert_eq!(result, Err(EgressError::TooLarge(cap)));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Give the server time to notice the closed connection, then check it stopped early:
    // at most the cap plus what socket buffers hold, nowhere near the 1 GiB on offer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let streamed = server.seen.streamed.load(Ordering::SeqCst);
    assert!(
        streamed < 64 * 1024 * 1024,
        "server produced {streamed} bytes"
    );
    let record = &job.records()[0];
    assert!(
        record.bytes_in > cap && record.bytes_in <= cap + 1024 * 1024,
        "{record:?}"
    );

    // A Content-Length over the cap is refused before reading any of the body.
    let declared_big = client
        .send(
            &job,
            get(format!("http://127.0.0.1:{port}/big-declared")),
            None,
        )
        .await;
    assert_eq!(declared_big, Err(EgressError::TooLarge(cap)));
    assert_eq!(job.records()[1].bytes_in, 0);

    // Exactly the cap is fine.
    let at_cap = ok(client
        .send(
            &job,
            get(format!("http://127.0.0.1:{port}/sized/{cap}")),
            None,
        )
        .await);
    assert_eq!(at_cap.body.len() as u64, cap);
    let over = client
        .send(
            &job,
            get(format!("http://127.0.0.1:{}/sized/{}", port, cap + 1)),
            None,
        )
        .await;
    assert_eq!(over, Err(EgressError::TooLarge(cap)));
}

#[tokio::test]
async fn slow_responses_time_out() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let limits = EgressLimits {
        total_timeout: Duration::from_millis(300),
        ..EgressLimits::default()
    };
    let declared = vec![format!("http://127.0.0.1:{port}")];
    let client = client_with(&declared, &["127.0.0.0/8"], limits, TestResolver::new(&[]));
    let job = client.new_job("job-slow");
    let url = format!("http://127.0.0.1:{port}/slow");

    let timeout = |result: Result<OutboundResponse, EgressError>| match result {
        Err(EgressError::Timeout(msg)) => msg,
        other => panic!("expected Timeout, got {other:?}"),
    };

    let started = Instant::now();
    let msg = timeout(client.send(&job, get(&url), None).await);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(msg.contains("within 300 ms (the host's limit)"), "{msg}");

    // A body trickling in forever is cut off by the same total timeout.
    let started = Instant::now();
    timeout(
        client
            .send(&job, get(format!("http://127.0.0.1:{port}/trickle")), None)
            .await,
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let mut short = get(&url);
    short.timeout_ms = Some(100);
    let msg = timeout(client.send(&job, short, None).await);
    assert!(
        msg.contains("within 100 ms (the request's timeout-ms)"),
        "{msg}"
    );

    let deadline = Instant::now() + Duration::from_millis(150);
    let msg = timeout(client.send(&job, get(&url), Some(deadline)).await);
    assert!(msg.contains("(the job's deadline)"), "{msg}");

    let before = server.requests();
    let msg = timeout(client.send(&job, get(&url), Some(Instant::now())).await);
    assert!(msg.contains("no time left"), "{msg}");
    assert_eq!(
        server.requests(),
        before,
        "nothing sent once the deadline passed"
    );
    assert_eq!(job.usage().failed, 5);
}

#[tokio::test]
async fn the_request_budget_is_per_job() {
    let server = server_on("127.0.0.1").await;
    let port = server.port();
    let limits = EgressLimits {
        max_requests_per_job: 2,
        ..EgressLimits::default()
    };
    let declared = vec![format!("http://127.0.0.1:{port}")];
    let client = client_with(&declared, &["127.0.0.0/8"], limits, TestResolver::new(&[]));
    let job = client.new_job("job-budget");
    let url = format!("http://127.0.0.1:{port}/echo");
    ok(client.send(&job, get(&url), None).await);
    // Failed requests count too.
    denied(
        client
            .send(&job, get("http://undeclared.test/"), None)
            .await,
    );
    for _ in 0..3 {
        assert!(matches!(
            client.send(&job, get(&url), None).await,
            Err(EgressError::BudgetExhausted(msg)) if msg.contains("2 requests")
        ));
    }
    assert_eq!(server.requests(), 1);
    let usage = job.usage();
    assert_eq!((usage.requests, usage.over_budget, usage.denied), (2, 3, 1));
    assert_eq!(job.records().len(), 2);

    let next = client.new_job("job-budget-2");
    ok(client.send(&next, get(&url), None).await);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn dns_rebinding_only_ever_connects_to_the_vetted_address() {
    let (public, private) = twin_servers().await;
    let port = public.port();
    // First lookup says 127.0.0.2 (allowed), the next 127.0.0.1 (refused), and so on: a
    // client that checked one answer and connected with another would reach `private`.
    let resolver = TestResolver::new(&[("rebind.test", &[&["127.0.0.2"], &["127.0.0.1"]])]);
    let declared = vec![format!("http://rebind.test:{port}")];
    let client = client_with(
        &declared,
        &["127.0.0.2/32"],
        EgressLimits::default(),
        resolver.clone(),
    );
    let job = client.new_job("job-rebind");
    let url = format!("http://rebind.test:{port}/echo");

    for round in 0..6 {
        // `/echo` answers `Connection: close`, so every request needs a new connection
        // and a new lookup.
        let result = client.send(&job, get(&url), None).await;
        if round % 2 == 0 {
            assert_eq!(ok(result).status, 200, "round {round}");
        } else {
            let msg = denied(result);
            assert!(
                msg.contains("127.0.0.1 is loopback"),
                "round {round}: {msg}"
            );
        }
    }
    assert_eq!(resolver.calls(), 6, "one lookup per connection, never two");
    assert_eq!(private.connections(), 0, "nothing reached 127.0.0.1");
    assert_eq!(public.requests(), 3);
    let expected: SocketAddr = format!("127.0.0.2:{port}").parse().expect("addr");
    for record in job.records().iter().filter(|r| r.error.is_none()) {
        assert_eq!(record.remote_addr, Some(expected));
    }

    // One answer with both addresses: the refused one is dropped, the other used.
    let mixed = TestResolver::new(&[("mixed.test", &[&["127.0.0.1", "127.0.0.2"]])]);
    let declared = vec![format!("http://mixed.test:{port}")];
    let client = client_with(&declared, &["127.0.0.2/32"], EgressLimits::default(), mixed);
    let job = client.new_job("job-mixed");
    for _ in 0..3 {
        ok(client
            .send(&job, get(format!("http://mixed.test:{port}/echo")), None)
            .await);
    }
    assert_eq!(private.connections(), 0);
    assert_eq!(public.requests(), 6);
}

#[tokio::test]
async fn connection_failures_are_reported() {
    let resolver = TestResolver::new(&[]);
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let declared = vec![
        format!("http://127.0.0.1:{port}"),
        "http://nxdomain.test".to_owned(),
    ];
    let client = client_with(
        &declared,
        &["127.0.0.0/8"],
        EgressLimits::default(),
        resolver,
    );
    let job = client.new_job("job-refused");
    match client
        .send(&job, get(format!("http://127.0.0.1:{port}/")), None)
        .await
    {
        Err(EgressError::Connection(msg)) => {
            assert!(
                msg.starts_with(&format!("http://127.0.0.1:{port}: ")),
                "{msg}"
            );
            assert!(msg.to_lowercase().contains("refused"), "{msg}");
        }
        other => panic!("expected Connection, got {other:?}"),
    }
    match client.send(&job, get("http://nxdomain.test/"), None).await {
        Err(EgressError::Connection(msg)) => {
            assert_eq!(msg, "could not resolve nxdomain.test: NXDOMAIN");
        }
        other => panic!("expected Connection, got {other:?}"),
    }
}
