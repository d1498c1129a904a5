//! The daemon's HTTP surface: health for orchestrators, status for operators.
//!
//! - `GET /health`: 200 `{"status":"ok"}` while Redis answers, 503 otherwise.
//! - `GET /`: version, queue, installed plugins, counts and the jobs running here (503
//!   without counts while Redis does not answer).
//! - `GET /metrics`: Prometheus text format ([`crate::queue::metrics`]); queue depth is
//!   read from Redis per scrape and left at its last value while Redis does not answer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use drowl_bull::Queue;
use serde_json::json;

use crate::queue::DaemonStats;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The queue, for counts and health.
    pub queue: Arc<Queue>,
    /// Counters and running jobs.
    pub stats: Arc<DaemonStats>,
    /// Installed plugin ids.
    pub plugins: Vec<String>,
    /// Queue name, for display.
    pub queue_name: String,
    /// Jobs run at once.
    pub concurrency: usize,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("queue_name", &self.queue_name)
            .finish_non_exhaustive()
    }
}

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/", get(status))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// An error as JSON with a status code.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "status": "error", "error": self.1 }))).into_response()
    }
}

/// How long the status endpoints wait for Redis. Orchestrators give health checks a few
/// seconds; without a bound, a request during an outage would wait for the client's own
/// command timeout (10 s) before saying anything.
const REDIS_ANSWER: Duration = Duration::from_secs(2);

async fn counts(queue: &Queue) -> Result<drowl_bull::JobCounts, String> {
    match tokio::time::timeout(REDIS_ANSWER, queue.get_job_counts()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("redis: {e}")),
        Err(_) => Err(format!(
            "redis: no answer within {} ms",
            REDIS_ANSWER.as_millis()
        )),
    }
}

async fn health(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    counts(&s.queue)
        .await
        .map(|_| Json(json!({ "status": "ok" })))
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e))
}

async fn metrics(State(s): State<AppState>) -> Response {
    if let Ok(c) = counts(&s.queue).await {
        s.stats.metrics.set_queue_depth(&[
            ("waiting", c.waiting),
            ("active", c.active),
            ("delayed", c.delayed),
            ("completed", c.completed),
            ("failed", c.failed),
            ("paused", c.paused),
        ]);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.stats.metrics.encode(),
    )
        .into_response()
}

/// The status page, also while Redis is away (503, without counts): what this process
/// runs and has done is what an operator most wants to see during an outage.
async fn status(State(s): State<AppState>) -> Response {
    let counts = counts(&s.queue).await;
    let active: Vec<_> = s
        .stats
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let mut body = json!({
        "status": "ok",
        "version": crate::HOST_VERSION,
        "queue": s.queue_name,
        "concurrency": s.concurrency,
        "plugins": s.plugins,
        "counts": null,
        "completed": n(&s.stats.completed),
        "failed": n(&s.stats.failed),
        "lockLost": n(&s.stats.lock_lost),
        "released": n(&s.stats.released),
        "postponed": n(&s.stats.postponed),
        "activeJobs": active,
    });
    match counts {
        Ok(c) => {
            body["counts"] = json!(c);
            Json(body).into_response()
        }
        Err(e) => {
            body["status"] = json!("error");
            body["error"] = json!(e);
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
