//! `/ui`: the dashboard for people (issue #13), rendered here with maud: no front-end
//! build and no script. Operators of Bull and Sidekiq look at bull-board or Sidekiq's
//! web UI before they read logs; this is drowl-host's. Everything is read when a page is
//! asked for:
//!
//! - `GET /ui`: queue counts per state (Redis), the running jobs (Bull's `active` list,
//!   every worker's), the latest failed jobs with their error, attempts and a retry
//!   button, the latest completed ones with their usage, attempts and events per minute
//!   over the last hour in this daemon (an SVG drawn here), and the plugins with their
//!   version, world, grants and whether they loaded.
//! - `GET /ui/jobs/{id}`: one job as Bull has it, its usage against its plugin's budget,
//!   and the usage and egress log of the attempts this daemon ran
//!   ([`crate::queue::activity`]: Bull keeps neither for a failed job).
//! - `POST /ui/jobs/{id}/retry`: a failed job goes back to `wait` (Bull's `job.retry()`,
//!   its attempts made kept), then back to `/ui`.
//!
//! Who may see it is [`access`]'s: loopback only unless `--ui-token` is set; `--ui off`
//! serves none of it.

mod access;
mod chart;
mod pages;
mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use drowl_bull::{JobState, Queue, QueueError, RanNow};
use serde::Deserialize;

pub use access::{UiAccess, Verdict, parse_token};
pub use view::{JobRow, PluginView, PluginViews};

use crate::queue::{DaemonStats, TypeDefaults};

/// `serve`'s dashboard flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// Serve the dashboard at /ui: `on` or `off`. Without --ui-token it answers requests
    /// from this machine only (loopback addresses, under a loopback Host name).
    #[arg(id = "ui", long = "ui", env = "DROWL_UI", value_name = "on|off", default_value = "on",
          action = clap::ArgAction::Set, value_parser = parse_switch)]
    pub enabled: bool,
    /// A token that opens /ui from anywhere (and is then required from everyone): sent
    /// as `Authorization: Bearer TOKEN`, or kept in a cookie after opening
    /// `/ui?token=TOKEN` once. 16 to 256 characters, e.g. `openssl rand -hex 32`.
    #[arg(long, env = "DROWL_UI_TOKEN", value_name = "TOKEN", hide_env_values = true,
          value_parser = parse_token)]
    pub ui_token: Option<String>,
}

fn parse_switch(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err("must be `on` or `off`".to_owned()),
    }
}

/// What the dashboard reads.
#[derive(Clone)]
pub struct UiState {
    /// The queue.
    pub queue: Arc<Queue>,
    /// Running jobs, the worker's phase and recent activity.
    pub stats: Arc<DaemonStats>,
    /// The daemon's job defaults: a job's attempts allowed are its own or these.
    pub defaults: Arc<TypeDefaults>,
    /// Installed plugins and files that did not load, as they are now.
    pub plugins: PluginViews,
    /// The queue's name.
    pub queue_name: String,
    /// Jobs run at once here.
    pub concurrency: usize,
    /// Token and CSRF token.
    pub access: Arc<UiAccess>,
}

impl std::fmt::Debug for UiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiState")
            .field("queue_name", &self.queue_name)
            .finish_non_exhaustive()
    }
}

/// Jobs per list on `/ui`.
const LIST: usize = 20;

/// How long a page waits for Redis before it shows what it has.
const REDIS_ANSWER: Duration = Duration::from_secs(2);

/// The dashboard's routes, behind [`access::guard`].
pub fn router(state: UiState) -> Router {
    Router::new()
        .route("/ui", get(dashboard))
        .route("/ui/jobs/{id}", get(job))
        .route("/ui/jobs/{id}/retry", post(retry))
        .route_layer(axum::middleware::from_fn_with_state(
            state.access.clone(),
            access::guard,
        ))
        .with_state(state)
}

/// `f` within [`REDIS_ANSWER`], its error as text.
async fn redis<T>(f: impl Future<Output = Result<T, QueueError>>) -> Result<T, String> {
    match tokio::time::timeout(REDIS_ANSWER, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("redis: {e}")),
        Err(_) => Err(format!(
            "redis: no answer within {} ms",
            REDIS_ANSWER.as_millis()
        )),
    }
}

fn html(code: StatusCode, page: maud::Markup) -> Response {
    (
        code,
        [
            // The pages carry a CSRF token and job data: never framed by another site,
            // never stored by a shared cache.
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        page,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct DashboardQuery {
    retried: Option<String>,
}

async fn dashboard(State(s): State<UiState>, Query(q): Query<DashboardQuery>) -> Response {
    let rows = |state: JobState| {
        let s = s.clone();
        async move {
            redis(s.queue.jobs(state, 0, LIST as i64 - 1))
                .await
                .map(|records| records.iter().map(|r| JobRow::of(r, &s.defaults)).collect())
        }
    };
    let (counts, active, failed, completed) = tokio::join!(
        redis(s.queue.get_job_counts()),
        rows(JobState::Active),
        rows(JobState::Failed),
        rows(JobState::Completed),
    );
    let mut here: Vec<_> = s
        .stats
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    here.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    let minutes = s.stats.activity.per_minute(chrono::Utc::now());
    let plugins = s.plugins.current();
    let code = if counts.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let page = pages::dashboard(&pages::Dashboard {
        version: crate::HOST_VERSION,
        queue: &s.queue_name,
        phase: s.stats.worker.get().as_str(),
        concurrency: s.concurrency,
        here: &here,
        counts,
        active,
        failed,
        completed,
        limit: LIST,
        plugins: &plugins,
        minutes: &minutes,
        notice: q
            .retried
            .map(|id| format!("Job {id} moved back to waiting: a worker will run it again.")),
        csrf: s.access.csrf(),
        token_required: s.access.token_required(),
    });
    html(code, page)
}

async fn job(State(s): State<UiState>, Path(id): Path<String>) -> Response {
    let record = match redis(s.queue.get_job(&id)).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return pages::refusal(
                StatusCode::NOT_FOUND,
                &format!(
                    "no job {id} in queue {}: never added, or removed (removeOnComplete/removeOnFail)",
                    s.queue_name
                ),
            );
        }
        Err(e) => return pages::refusal(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let row = JobRow::of(&record, &s.defaults);
    let attempts = s.stats.activity.attempts_of(&id);
    let plugins = s.plugins.current();
    let plugin = row.plugin.as_deref().and_then(|p| {
        plugins.iter().find(|v| {
            v.enabled
                && crate::jobs::registry::addressed_as(&v.id)
                    == crate::jobs::registry::addressed_as(p)
        })
    });
    let page = pages::job(&pages::JobPage {
        row: &row,
        data: &record.data,
        opts: &record.opts,
        stacktrace: &record.stacktrace,
        attempts: &attempts,
        plugin,
        csrf: s.access.csrf(),
        version: crate::HOST_VERSION,
    });
    html(StatusCode::OK, page)
}

#[derive(Debug, Deserialize)]
struct RetryForm {
    csrf: Option<String>,
}

/// `POST /ui/jobs/{id}/retry`: same origin, the daemon's CSRF token, and a job that is
/// failed; then Bull's retry and a redirect to `/ui`.
async fn retry(
    State(s): State<UiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<RetryForm>, FormRejection>,
) -> Response {
    if let Err(e) = access::same_origin(&headers) {
        return pages::refusal(StatusCode::FORBIDDEN, &e);
    }
    let sent = form.ok().and_then(|Form(f)| f.csrf);
    if !s.access.csrf_matches(sent.as_deref()) {
        return pages::refusal(
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token is missing or not this daemon's (a form from \
             before a restart, or from another page): reload /ui and press Retry again",
        );
    }
    // Only failed jobs: `run_now` would also promote a delayed one, which is not what a
    // Retry button says.
    match redis(s.queue.get_job(&id)).await {
        Err(e) => return pages::refusal(StatusCode::SERVICE_UNAVAILABLE, &e),
        Ok(None) => {
            return pages::refusal(
                StatusCode::NOT_FOUND,
                &format!("no job {id} in queue {}", s.queue_name),
            );
        }
        Ok(Some(r)) if r.state != JobState::Failed => {
            return pages::refusal(
                StatusCode::CONFLICT,
                &format!(
                    "job {id} is {}, not failed: there is nothing to retry",
                    view::state_name(r.state)
                ),
            );
        }
        Ok(Some(_)) => {}
    }
    match redis(s.queue.run_now(&id)).await {
        Ok(RanNow::Retried) => {
            tracing::info!(job = %id, "failed job retried from the dashboard");
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("retried", &id)
                .finish();
            (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, format!("/ui?{query}"))],
            )
                .into_response()
        }
        Ok(RanNow::NotFound) => pages::refusal(StatusCode::NOT_FOUND, &format!("no job {id}")),
        Ok(RanNow::Running) => {
            pages::refusal(StatusCode::CONFLICT, &format!("job {id} is running"))
        }
        Ok(RanNow::Promoted | RanNow::NotDelayedOrFailed) => pages::refusal(
            StatusCode::CONFLICT,
            &format!("job {id} changed state before it could be retried: reload /ui"),
        ),
        Err(e) => pages::refusal(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}
