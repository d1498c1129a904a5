//! The daemon's HTTP surface: health for orchestrators, status for operators.
//!
//! - `GET /health`: 200 `{"status":"ok"}` while Redis answers, 503 otherwise.
//! - `GET /`: version, queue, installed plugins, counts and the jobs running here.

use std::sync::Arc;

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

async fn health(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    s.queue
        .get_job_counts()
        .await
        .map(|_| Json(json!({ "status": "ok" })))
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")))
}

async fn status(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let counts = s
        .queue
        .get_job_counts()
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")))?;
    let active: Vec<_> = s
        .stats
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    Ok(Json(json!({
        "status": "ok",
        "version": crate::HOST_VERSION,
        "queue": s.queue_name,
        "concurrency": s.concurrency,
        "plugins": s.plugins,
        "counts": counts,
        "completed": s.stats.completed.load(std::sync::atomic::Ordering::Relaxed),
        "failed": s.stats.failed.load(std::sync::atomic::Ordering::Relaxed),
        "activeJobs": active,
    })))
}
