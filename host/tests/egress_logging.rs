//! Every outbound request is logged with the job id, origin, method, status, bytes and
//! time, and nothing from the path, query or headers (which may carry secrets).
//!
//! A test binary of its own: `tracing` caches per-callsite interest process-wide, so a
//! thread-local subscriber only reliably sees events when no other test runs beside it.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use drowl_host::capabilities::http::egress::{
    EgressClient, EgressError, EgressLimits, EgressPolicy, OutboundRequest,
};
use tokio::net::TcpListener;

/// Collects what the `tracing` subscriber writes.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn request(url: String, headers: &[(&str, &str)]) -> OutboundRequest {
    OutboundRequest {
        method: "GET".to_owned(),
        url,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_request_is_logged_without_path_or_headers() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded, so the whole exchange logs through this.
    let _guard = tracing::subscriber::set_default(subscriber);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().route("/echo", get(|| async { "hello" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let policy = EgressPolicy::new(
        &[format!("http://127.0.0.1:{port}")],
        &["*".to_owned()],
        &HashMap::new(),
        vec!["127.0.0.0/8".parse().expect("net")],
        EgressLimits::default(),
    )
    .expect("policy");
    let client = EgressClient::new(policy).expect("client");
    let job = client.new_job("job-logged");
    let with_secrets = request(
        format!("http://127.0.0.1:{port}/echo?api_key=secret-token"),
        &[("Authorization", "Bearer secret-token")],
    );
    let response = client
        .send(&job, with_secrets, None)
        .await
        .expect("response");
    assert_eq!(response.status, 200);
    let undeclared = request("http://undeclared.test/secret-token".to_owned(), &[]);
    assert!(matches!(
        client.send(&job, undeclared, None).await,
        Err(EgressError::Denied(_))
    ));

    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.contains("outbound http"))
        .map(|l| serde_json::from_str(l).expect("json log line"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let ok_line = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(ok_line["job_id"], "job-logged");
    assert_eq!(ok_line["origin"], format!("http://127.0.0.1:{port}"));
    assert_eq!(ok_line["method"], "GET");
    assert_eq!(ok_line["status"], 200);
    assert_eq!(ok_line["bytes_in"], 5);
    assert!(ok_line["elapsed_ms"].is_u64(), "{ok_line}");
    assert_eq!(lines[1]["level"], "WARN");
    assert_eq!(lines[1]["fields"]["origin"], "http://undeclared.test:80");
    let error = lines[1]["fields"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("denied:"), "{error}");
    assert!(
        !text.contains("secret-token"),
        "paths, queries and headers stay out of logs: {text}"
    );
}
