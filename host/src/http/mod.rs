//! The daemon's HTTP surface: health for orchestrators, status for operators.
//!
//! - `GET /health`: the shape drowl's own worker answers, so drowl's UI and probes read it
//!   unchanged: `{"status": "ok" | "degraded", "service": "drowl-worker", "version",
//!   "timestamp", "checks": {"worker", "postgres", "redis", "s3": {"status", "message"}}}`,
//!   200 when every check is `ok`, 503 otherwise. `postgres` and `s3` check the stores
//!   the daemon actually uses: with embedded storage they check SQLite and the objects
//!   directory and say so in `message`.
//! - `GET /`: version, queue, installed plugins, counts and the jobs running here (503
//!   without counts while Redis does not answer).
//! - `POST /jobs/:id/process` (with `--process-endpoint`, for development): runs a
//!   delayed or failed job now.
//! - `GET /metrics`: Prometheus text format ([`crate::queue::metrics`]); queue depth is
//!   read from Redis per scrape and left at its last value while Redis does not answer.
//! - `POST /webhooks/:pluginId`: deliveries a platform pushes to a plugin that receives
//!   webhooks, verified, stored and queued ([`webhooks`]).
//! - `/ui`: the dashboard for people ([`ui`], its own router, merged by `serve`).

pub mod ui;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use drowl_bull::Queue;
use serde_json::json;

use crate::jobs::SharedRegistry;
use crate::queue::{DaemonStats, WorkerPhase};
use crate::storage::{Storage, StorageError};

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
    /// The stores jobs write to, for the health check.
    pub storage: Storage,
    /// `REDIS_URL` without its password, for health messages.
    pub redis_url: String,
    /// Whether `POST /jobs/:id/process` is served (`--process-endpoint`).
    pub process_endpoint: bool,
    /// The installed plugins, for `POST /webhooks/:pluginId`: read per request, since
    /// the daemon replaces them as the `plugins` table changes.
    pub registry: SharedRegistry,
    /// The largest webhook body accepted, in bytes (`--webhook-max-body-bytes`).
    pub webhook_max_body_bytes: usize,
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
        .route("/jobs/{id}/process", axum::routing::post(process_job))
        .route(
            "/webhooks/{plugin_id}",
            axum::routing::post(webhooks::receive),
        )
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

/// How long each check of `GET /health` may take. The four run side by side, so the
/// answer comes within this bound even when every service hangs; probes usually give a
/// health check a few seconds.
const CHECK_ANSWER: Duration = Duration::from_secs(2);

/// One entry of `checks`: `{"status": "ok" | "error", "message"}`.
fn check(ok: bool, message: String) -> serde_json::Value {
    json!({ "status": if ok { "ok" } else { "error" }, "message": message })
}

/// `store.ping()` within [`CHECK_ANSWER`], as a check naming the backend.
async fn store_check(
    backend: String,
    ping: impl std::future::Future<Output = Result<(), StorageError>>,
) -> serde_json::Value {
    match tokio::time::timeout(CHECK_ANSWER, ping).await {
        Ok(Ok(())) => check(true, backend),
        Ok(Err(e)) => check(false, format!("{backend}: {e}")),
        Err(_) => check(
            false,
            format!(
                "{backend}: no answer within {} ms",
                CHECK_ANSWER.as_millis()
            ),
        ),
    }
}

/// Redis (`EXISTS` of the queue's pause marker: one round trip that also says whether the
/// queue is paused) and the worker loop.
async fn queue_checks(s: &AppState) -> (serde_json::Value, serde_json::Value) {
    let paused = tokio::time::timeout(CHECK_ANSWER, s.queue.is_paused()).await;
    let redis = match &paused {
        Ok(Ok(_)) => check(true, format!("Redis at {}", s.redis_url)),
        Ok(Err(e)) => check(false, format!("Redis at {}: {e}", s.redis_url)),
        Err(_) => check(
            false,
            format!(
                "Redis at {}: no answer within {} ms",
                s.redis_url,
                CHECK_ANSWER.as_millis()
            ),
        ),
    };
    let running = s
        .stats
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len();
    let worker = match (s.stats.worker.get(), paused) {
        // A pause is an operator's choice, not a fault: reported, but healthy, so that
        // liveness probes do not restart every worker of a deliberately paused queue.
        (WorkerPhase::Running, Ok(Ok(true))) => check(
            true,
            format!(
                "queue {} is paused (Bull queue.pause()): no jobs are taken until it is resumed",
                s.queue_name
            ),
        ),
        // Whether the queue is paused is unknown while Redis does not answer; the redis
        // check reports that.
        (WorkerPhase::Running, _) => check(
            true,
            format!(
                "running on queue {}: {running} of {} slots busy",
                s.queue_name, s.concurrency
            ),
        ),
        (phase @ (WorkerPhase::Starting | WorkerPhase::Stopping | WorkerPhase::Stopped), _) => {
            check(
                false,
                format!(
                    "{}: not taking jobs from queue {}",
                    phase.as_str(),
                    s.queue_name
                ),
            )
        }
    };
    (redis, worker)
}

async fn health(State(s): State<AppState>) -> Response {
    let events = &s.storage.events;
    let objects = &s.storage.objects;
    let ((redis, worker), postgres, s3) = tokio::join!(
        queue_checks(&s),
        store_check(events.backend(), events.ping()),
        store_check(objects.backend(), objects.ping()),
    );
    let ok = [&worker, &postgres, &redis, &s3]
        .iter()
        .all(|c| c["status"] == "ok");
    let checks = json!({ "worker": worker, "postgres": postgres, "redis": redis, "s3": s3 });
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "service": "drowl-worker",
        "version": crate::HOST_VERSION,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "checks": checks,
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// `POST /jobs/:id/process`: a delayed job is promoted, a failed one retried, so that a
/// developer need not wait for a delay or a backoff. 404 while the endpoint is off.
async fn process_job(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    use drowl_bull::RanNow;
    if !s.process_endpoint {
        return ApiError(
            StatusCode::NOT_FOUND,
            "POST /jobs/:id/process is off; it is for development: start serve with \
             --process-endpoint (DROWL_PROCESS_ENDPOINT=true) to use it"
                .into(),
        )
        .into_response();
    }
    let ran = match tokio::time::timeout(REDIS_ANSWER, s.queue.run_now(&id)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}"))
                .into_response();
        }
        Err(_) => {
            return ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("redis: no answer within {} ms", REDIS_ANSWER.as_millis()),
            )
            .into_response();
        }
    };
    let (code, was) = match ran {
        RanNow::Promoted => (StatusCode::ACCEPTED, "delayed"),
        RanNow::Retried => (StatusCode::ACCEPTED, "failed"),
        RanNow::NotFound => {
            return ApiError(StatusCode::NOT_FOUND, format!("no job {id} in this queue"))
                .into_response();
        }
        RanNow::Running => {
            return ApiError(StatusCode::CONFLICT, format!("job {id} is running")).into_response();
        }
        RanNow::NotDelayedOrFailed => {
            return ApiError(
                StatusCode::CONFLICT,
                format!("job {id} is neither delayed nor failed (waiting or completed)"),
            )
            .into_response();
        }
    };
    (
        code,
        Json(json!({ "status": "waiting", "id": id, "was": was })),
    )
        .into_response()
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
        // As they are now: the registry changes while the daemon runs.
        "plugins": s.stats.metrics.plugins(),
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
