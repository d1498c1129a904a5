//! The dashboard's HTML, written with maud: every value is escaped where it is placed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drowl_bull::JobCounts;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::view::{JobRow, PluginView, bytes, path_segment, state_name, time};
use crate::queue::ActiveEntry;
use crate::queue::activity::{Attempt, Minute};

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#f5f6f8}
header{background:#1d232a;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}header a{color:#fff}header .meta{color:#b8c0c8}
main{padding:12px 20px 40px;max-width:1400px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px;margin:12px 0}
h2{font-size:15px;margin:2px 0 8px}
.counts{display:flex;gap:10px;flex-wrap:wrap}
.count{border:1px solid #dde1e6;border-radius:6px;padding:6px 14px;min-width:86px;background:#fafbfc}
.count b{display:block;font-size:22px}.count.failed b{color:#c62828}.count.completed b{color:#2e7d32}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef0f2;vertical-align:top}
th{font-weight:600;color:#57606a;font-size:12px}td.num{text-align:right;white-space:nowrap}
.reason{color:#b71c1c;font-family:ui-monospace,monospace;font-size:12px;max-width:520px;overflow-wrap:anywhere}
.muted{color:#6b737c}.notice{background:#e8f5e9;border-color:#a5d6a7}.error{background:#ffebee;border-color:#ef9a9a}
.tag{display:inline-block;border-radius:3px;padding:0 5px;font-size:12px;background:#eef0f2;margin:1px 2px 1px 0}
.tag.on{background:#e8f5e9;color:#1b5e20}.tag.off{background:#ffebee;color:#b71c1c}
button{font:inherit;padding:2px 10px;border:1px solid #8c959f;border-radius:4px;background:#fff;cursor:pointer}
button:hover{background:#eef0f2}
pre{background:#f6f8fa;padding:8px;border-radius:4px;overflow:auto;max-height:360px;font-size:12px}
.chart{width:100%;max-width:1000px;height:auto}.chart .axis{stroke:#8c959f}
table.usage{width:auto;min-width:460px}.chart .tick,.chart .panel{font-size:10px;fill:#57606a}
.chart .completed{fill:#43a047}.chart .failed{fill:#e53935}.chart .events{fill:#1e88e5}
.legend span{margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
"#;

/// A whole page.
fn layout(title: &str, header_meta: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · drowl-host" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { a href="/ui" { "drowl-host" } }
                    (header_meta)
                }
                main { (body) }
            }
        }
    }
}

/// A refusal or error as a small page with `code`.
pub(super) fn refusal(code: StatusCode, message: &str) -> Response {
    let body = html! {
        section.error {
            h2 { (code.as_u16()) " " (code.canonical_reason().unwrap_or_default()) }
            p { (message) }
            p { a href="/ui" { "Back to the dashboard" } }
        }
    };
    (code, layout("refused", html! {}, body)).into_response()
}

/// What the dashboard page shows.
#[derive(Debug)]
pub(super) struct Dashboard<'a> {
    /// drowl-host's version.
    pub version: &'a str,
    /// The queue's name.
    pub queue: &'a str,
    /// The worker loop's phase.
    pub phase: &'a str,
    /// Jobs run at once here.
    pub concurrency: usize,
    /// Jobs running in this daemon.
    pub here: &'a [ActiveEntry],
    /// Counts per state, or why Redis did not give them.
    pub counts: Result<JobCounts, String>,
    /// Bull's active list (every worker's).
    pub active: Result<Vec<JobRow>, String>,
    /// The latest failed jobs.
    pub failed: Result<Vec<JobRow>, String>,
    /// The latest completed jobs.
    pub completed: Result<Vec<JobRow>, String>,
    /// How many jobs each list shows at most.
    pub limit: usize,
    /// Installed plugins, and files that did not load.
    pub plugins: &'a [PluginView],
    /// Attempts and events per minute, oldest first.
    pub minutes: &'a [Minute],
    /// Shown after a retry.
    pub notice: Option<String>,
    /// The CSRF token the retry forms carry.
    pub csrf: &'a str,
    /// Whether a token guards the page (otherwise: loopback only).
    pub token_required: bool,
}

fn header_meta(d: &Dashboard<'_>) -> Markup {
    html! {
        span.meta { "v" (d.version) }
        span.meta { "queue " b { (d.queue) } }
        span.meta { "worker " (d.phase) ": " (d.here.len()) " of " (d.concurrency) " slots busy here" }
        span.meta {
            @if d.token_required { "token required" } @else { "loopback only" }
        }
        span.meta { a href="/ui" { "refresh" } }
    }
}

fn unavailable(what: &str, e: &str) -> Markup {
    html! { p.reason { (what) " unavailable: " (e) } }
}

fn job_link(id: &str) -> Markup {
    html! { a href=(format!("/ui/jobs/{}", path_segment(id))) { (id) } }
}

fn retry_form(id: &str, csrf: &str) -> Markup {
    html! {
        form method="post" action=(format!("/ui/jobs/{}/retry", path_segment(id))) {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" data-retry=(id) { "Retry" }
        }
    }
}

/// `n of m`, or `n (m allowed)` for a job run more often than its attempts allow (a
/// failed job retried by hand keeps its attempts made).
fn attempts(n: u32, allowed: u32) -> String {
    if n <= allowed {
        format!("{n} of {allowed}")
    } else {
        format!("{n} ({allowed} allowed)")
    }
}

fn plugin_cell(p: Option<&str>) -> Markup {
    html! { @match p { Some(p) => (p), None => span.muted { "host" } } }
}

/// Wall time, requests and bytes received, peak memory: a completed job's `usage` in one
/// line.
fn usage_line(usage: &serde_json::Map<String, Value>) -> String {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut parts = vec![
        format!("{} ms", n("wallMs")),
        format!("{} req", n("httpRequests")),
        format!("{} in", bytes(n("httpBytesIn"))),
        format!("{} peak", bytes(n("peakMemoryBytes"))),
    ];
    if let Some(v) = usage.get("violations").and_then(Value::as_array)
        && !v.is_empty()
    {
        let names: Vec<&str> = v.iter().filter_map(Value::as_str).collect();
        parts.push(format!("over: {}", names.join(", ")));
    }
    parts.join(" · ")
}

/// `/ui`.
pub(super) fn dashboard(d: &Dashboard<'_>) -> Markup {
    let body = html! {
        @if let Some(n) = &d.notice {
            section.notice #notice { (n) }
        }
        section #counts {
            h2 { "Queue" }
            @match &d.counts {
                Ok(c) => {
                    div.counts {
                        @for (name, n) in [("waiting", c.waiting), ("active", c.active), ("delayed", c.delayed),
                                           ("completed", c.completed), ("failed", c.failed), ("paused", c.paused)] {
                            div class=(format!("count {name}")) data-state=(name) { b { (n) } (name) }
                        }
                    }
                }
                Err(e) => (unavailable("Counts", e)),
            }
        }
        section #activity {
            h2 { "Last hour in this daemon" }
            (super::chart::minutes(d.minutes))
            div.legend.muted {
                span { i style="background:#43a047" {} "completed" }
                span { i style="background:#e53935" {} "failed (retried or not)" }
                span { i style="background:#1e88e5" {} "events stored" }
            }
        }
        section #running {
            h2 { "Running" }
            @match &d.active {
                Err(e) => (unavailable("Running jobs", e)),
                Ok(rows) if rows.is_empty() => p.muted { "Nothing is running." },
                Ok(rows) => {
                    table {
                        tr { th { "id" } th { "type" } th { "name" } th { "plugin" } th { "attempt" } th { "started" } th { "progress" } th { "" } }
                        @for r in rows {
                            tr {
                                td { (job_link(&r.id)) }
                                td { (r.job_type) } td { (r.name) } td { (plugin_cell(r.plugin.as_deref())) }
                                td.num { (attempts(r.attempts_made + 1, r.attempts_allowed)) }
                                td { (time(r.processed_on)) }
                                td.num { (r.progress) }
                                td.muted { @if d.here.iter().any(|a| a.id == r.id) { "here" } }
                            }
                        }
                    }
                }
            }
        }
        section #failed {
            h2 { "Failed" span.muted { " (latest " (d.limit) ")" } }
            @match &d.failed {
                Err(e) => (unavailable("Failed jobs", e)),
                Ok(rows) if rows.is_empty() => p.muted { "No failed jobs." },
                Ok(rows) => {
                    table {
                        tr { th { "id" } th { "type" } th { "name" } th { "plugin" } th { "attempts" } th { "error" } th { "failed" } th { "" } }
                        @for r in rows {
                            tr id=(format!("failed-{}", r.id)) {
                                td { (job_link(&r.id)) }
                                td { (r.job_type) } td { (r.name) } td { (plugin_cell(r.plugin.as_deref())) }
                                td.num { (attempts(r.attempts_made, r.attempts_allowed)) }
                                td.reason { (r.failed_reason.as_deref().unwrap_or("")) }
                                td { (time(r.finished_on)) }
                                td { (retry_form(&r.id, d.csrf)) }
                            }
                        }
                    }
                }
            }
        }
        section #completed {
            h2 { "Completed" span.muted { " (latest " (d.limit) ")" } }
            @match &d.completed {
                Err(e) => (unavailable("Completed jobs", e)),
                Ok(rows) if rows.is_empty() => p.muted { "No completed jobs." },
                Ok(rows) => {
                    table {
                        tr { th { "id" } th { "type" } th { "name" } th { "plugin" } th { "attempts" } th { "finished" } th { "ran" } th { "events" } th { "usage" } }
                        @for r in rows {
                            tr id=(format!("completed-{}", r.id)) {
                                td { (job_link(&r.id)) }
                                td { (r.job_type) } td { (r.name) } td { (plugin_cell(r.plugin.as_deref())) }
                                td.num { (attempts(r.attempts_made + 1, r.attempts_allowed)) }
                                td { (time(r.finished_on)) }
                                td.num { @if let Some(ms) = r.run_ms() { (ms) " ms" } }
                                td.num { (r.returnvalue.as_ref().and_then(|v| v.get("eventsStored")).and_then(Value::as_u64).map(|n| n.to_string()).unwrap_or_default()) }
                                td.muted { @if let Some(u) = r.usage() { (usage_line(u)) } }
                            }
                        }
                    }
                }
            }
        }
        (plugins(d.plugins))
    };
    layout("dashboard", header_meta(d), body)
}

fn tags(items: &[String], none: &str) -> Markup {
    html! {
        @if items.is_empty() { span.muted { (none) } }
        @for i in items { span.tag { (i) } }
    }
}

fn plugins(list: &[PluginView]) -> Markup {
    html! {
        section #plugins {
            h2 { "Plugins" }
            @if list.is_empty() { p.muted { "No plugins installed: every plugin job fails." } }
            @else {
                table {
                    tr { th { "id" } th { "version" } th { "world" } th { "state" } th { "may reach" } th { "sources" } th { "platforms granted" } th { "follow-ups granted" } th { "budget per job" } }
                    @for p in list {
                        tr id=(format!("plugin-{}", p.id)) {
                            td { b { (p.id) } }
                            td { (p.version.as_deref().unwrap_or("—")) }
                            td { (p.world.as_deref().unwrap_or("—")) @if let Some(c) = &p.contract { span.muted { " @" (c) } } }
                            td {
                                @if p.enabled { span.tag.on { "enabled" } }
                                @else { span.tag.off { "not loaded" } div.reason { (p.problem.as_deref().unwrap_or("")) } }
                            }
                            td { (tags(&p.egress, "nothing")) }
                            td {
                                @for s in &p.sources {
                                    span.tag { (s) @if p.granted_sources.contains(s) { " (granted)" } }
                                }
                            }
                            td { (tags(&p.platforms, "—")) }
                            td { (tags(&p.follow_ups, "—")) }
                            td.muted {
                                @if let Some(b) = &p.budget {
                                    (b.timeout.as_millis()) " ms · " (bytes(b.max_memory_bytes)) " · " (b.max_http_requests) " requests"
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a job's page shows.
#[derive(Debug)]
pub(super) struct JobPage<'a> {
    /// The job as Bull has it.
    pub row: &'a JobRow,
    /// Its raw record's `data` and `opts`.
    pub data: &'a Value,
    /// Its stored options.
    pub opts: &'a Value,
    /// Stack trace entries of its failures.
    pub stacktrace: &'a [String],
    /// The attempts this daemon ran and still remembers.
    pub attempts: &'a [Attempt],
    /// The plugin that runs it, when installed here: its budget is shown with the usage.
    pub plugin: Option<&'a PluginView>,
    /// The CSRF token for the retry form.
    pub csrf: &'a str,
    /// drowl-host's version.
    pub version: &'a str,
}

fn json(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Usage against the plugin's budget, where there is a budget to compare with.
fn usage_table(usage: &serde_json::Map<String, Value>, plugin: Option<&PluginView>) -> Markup {
    let budget = plugin.and_then(|p| p.budget);
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    let rows: Vec<(&str, String, Option<String>)> = vec![
        (
            "wall time",
            format!("{} ms", n("wallMs")),
            budget.map(|b| format!("{} ms", b.timeout.as_millis())),
        ),
        ("instantiation", format!("{} µs", n("instantiateUs")), None),
        (
            "peak memory",
            bytes(n("peakMemoryBytes")),
            budget.map(|b| bytes(b.max_memory_bytes)),
        ),
        (
            "HTTP requests",
            n("httpRequests").to_string(),
            budget.map(|b| b.max_http_requests.to_string()),
        ),
        (
            "HTTP bytes in / out",
            format!("{} / {}", bytes(n("httpBytesIn")), bytes(n("httpBytesOut"))),
            None,
        ),
        (
            "bytes returned by the plugin",
            bytes(n("bytesFromPlugin")),
            None,
        ),
        (
            "objects written",
            format!(
                "{} ({})",
                n("objectsWritten"),
                bytes(n("objectBytesWritten"))
            ),
            budget.map(|b| bytes(b.max_object_bytes_per_job)),
        ),
        (
            "log lines (dropped)",
            format!("{} ({})", n("logLines"), n("logLinesDropped")),
            budget.map(|b| b.max_log_lines.to_string()),
        ),
    ];
    let violations: Vec<&str> = usage
        .get("violations")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        table.usage {
            tr { th { "" } th { "used" } th { "budget" } }
            @for (what, used, allowed) in &rows {
                tr { td { (what) } td.num { (used) } td.num.muted { (allowed.as_deref().unwrap_or("")) } }
            }
            @if let Some(fuel) = usage.get("fuelConsumed").and_then(Value::as_u64) {
                tr { td { "fuel" } td.num { (fuel) } td {} }
            }
        }
        @if !violations.is_empty() {
            p.reason { "Budgets run into: " (violations.join(", ")) }
        }
    }
}

fn usage_of(a: &Attempt) -> Option<serde_json::Map<String, Value>> {
    let v = serde_json::to_value(a.usage.as_ref()?).ok()?;
    v.as_object().cloned()
}

/// `/ui/jobs/{id}`.
pub(super) fn job(p: &JobPage<'_>) -> Markup {
    let r = p.row;
    let meta = html! { span.meta { "v" (p.version) } span.meta { "job " b { (r.id) } } };
    let body = html! {
        section #job {
            h2 { "Job " (r.id) " · " (state_name(r.state)) }
            table {
                tr { th { "type" } td { (r.job_type) } }
                tr { th { "name" } td { (r.name) } }
                tr { th { "plugin" } td { (plugin_cell(r.plugin.as_deref())) } }
                tr { th { "failed attempts" } td { (attempts(r.attempts_made, r.attempts_allowed)) } }
                tr { th { "added" } td { (time(r.added)) } }
                tr { th { "last started" } td { (time(r.processed_on)) } }
                tr { th { "finished" } td { (time(r.finished_on)) } }
                tr { th { "progress" } td { (r.progress) } }
                @if let Some(reason) = &r.failed_reason {
                    tr { th { "last error" } td.reason { (reason) } }
                }
            }
            @if r.state == drowl_bull::JobState::Failed {
                p { (retry_form(&r.id, p.csrf)) }
            }
        }
        // Each attempt run here shows its own usage; otherwise the result's, which any
        // daemon may have written.
        @if let (Some(u), true) = (r.usage(), p.attempts.is_empty()) {
            section #usage {
                h2 { "Usage (from the job's result)" }
                (usage_table(u, p.plugin))
            }
        }
        section #attempts {
            h2 { "Attempts run by this daemon" }
            @if p.attempts.is_empty() {
                p.muted { "None that this daemon remembers: it keeps the last "
                    (crate::queue::activity::ATTEMPTS_KEPT) " attempts it ran since it started. Another daemon may have run this job." }
            }
            @for a in p.attempts {
                h2 { "Attempt " (a.attempt) ": " (a.outcome) span.muted { " · " (a.finished_at.format("%Y-%m-%d %H:%M:%S UTC")) " · " (a.elapsed_ms) " ms · " (a.plugin) } }
                @if let Some(e) = &a.error { p.reason { (e) } }
                @if let Some(u) = usage_of(a) { (usage_table(&u, p.plugin)) }
                h2 { "Egress" }
                @if a.requests.is_empty() { p.muted { "No outbound requests." } }
                @else {
                    table.egress {
                        tr { th { "method" } th { "origin" } th { "status" } th { "connected to" } th { "out" } th { "in" } th { "ms" } th { "error" } }
                        @for q in &a.requests {
                            tr {
                                td { (q.method.as_deref().unwrap_or("—")) }
                                td { (q.origin.as_deref().unwrap_or("—")) }
                                td.num { (q.status.map(|s| s.to_string()).unwrap_or_default()) }
                                td { (q.remote_addr.map(|s| s.to_string()).unwrap_or_default()) }
                                td.num { (bytes(q.bytes_out)) }
                                td.num { (bytes(q.bytes_in)) }
                                td.num { (q.elapsed_ms) }
                                td.reason { (q.error.map(|e| serde_json::to_value(e).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()).unwrap_or_default()) }
                            }
                        }
                    }
                    @if a.requests_dropped > 0 {
                        p.muted { (a.requests_dropped) " later requests not kept." }
                    }
                }
            }
        }
        @if !p.stacktrace.is_empty() {
            section #stacktrace { h2 { "Failures" } pre { (p.stacktrace.join("\n")) } }
        }
        section #data { h2 { "Data" } pre { (json(p.data)) } }
        section #opts { h2 { "Options" } pre { (json(p.opts)) } }
        @if let Some(v) = &r.returnvalue {
            section #result { h2 { "Result" } pre { (json(v)) } }
        }
    };
    layout(&format!("job {}", r.id), meta, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, reason: &str) -> JobRow {
        JobRow {
            id: id.to_owned(),
            state: drowl_bull::JobState::Failed,
            job_type: "event_ingestion".to_owned(),
            name: "<b>probe</b>".to_owned(),
            plugin: Some("hostile".to_owned()),
            attempts_made: 1,
            attempts_allowed: 1,
            failed_reason: Some(reason.to_owned()),
            added: Some(1_767_225_600_000),
            processed_on: Some(1_767_225_600_100),
            finished_on: Some(1_767_225_600_250),
            progress: Value::from(0),
            returnvalue: None,
        }
    }

    fn dashboard_with(failed: Vec<JobRow>) -> String {
        let d = Dashboard {
            version: "0.2.0",
            queue: "drowl",
            phase: "running",
            concurrency: 4,
            here: &[],
            counts: Ok(JobCounts {
                failed: failed.len() as u64,
                ..JobCounts::default()
            }),
            active: Ok(Vec::new()),
            failed: Ok(failed),
            completed: Err("redis: no answer within 2000 ms".to_owned()),
            limit: 20,
            plugins: &[PluginView::not_loaded("broken", "not a component")],
            minutes: &[],
            notice: Some("Job 7 moved back to waiting".to_owned()),
            csrf: "c5rf",
            token_required: false,
        };
        dashboard(&d).into_string()
    }

    #[test]
    fn failed_jobs_are_listed_with_their_error_and_a_retry_form() {
        let html = dashboard_with(vec![row("7", "plugin error (Retryable): flaky attempt 1")]);
        assert!(html.contains("flaky attempt 1"), "{html}");
        assert!(
            html.contains(r#"<form method="post" action="/ui/jobs/7/retry">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<input type="hidden" name="csrf" value="c5rf">"#),
            "{html}"
        );
        assert!(html.contains(r#"data-state="failed"><b>1</b>"#), "{html}");
        assert!(
            html.contains("Completed jobs unavailable: redis: no answer"),
            "{html}"
        );
        assert!(html.contains("not loaded"), "{html}");
        assert!(html.contains("Job 7 moved back to waiting"));
        assert!(html.contains("1 of 1"));
    }

    #[test]
    fn what_jobs_carry_is_escaped() {
        let html = dashboard_with(vec![row(
            "x\"><script>alert(1)</script>",
            "<img src=x onerror=alert(2)>",
        )]);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<b>probe</b>"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(2)&gt;"),
            "{html}"
        );
        // The id is its own path segment in links and form actions.
        assert!(
            html.contains("/ui/jobs/x%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E/retry"),
            "{html}"
        );
    }
}
