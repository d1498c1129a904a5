//! What the pages show, read out of Bull's job records and the daemon's registry.

use drowl_bull::{JobInfo, JobRecord, JobState};
use serde_json::Value;

use crate::jobs::{JobRequest, ReadyPlugin};
use crate::queue::TypeDefaults;

/// A plugin as the dashboard lists it: what it is, whether it takes jobs, what it was
/// granted and its budget.
#[derive(Debug, Clone, Default)]
pub struct PluginView {
    /// The id it is installed as (for a file that did not load, the file's name).
    pub id: String,
    /// Its manifest's version.
    pub version: Option<String>,
    /// Its WIT world (`ingestion-plugin`, ...).
    pub world: Option<String>,
    /// The contract version it targets.
    pub contract: Option<String>,
    /// Whether it takes jobs: loaded and registered. The daemon has no runtime switch;
    /// a plugin that did not load is listed disabled with the reason.
    pub enabled: bool,
    /// Why it is not enabled.
    pub problem: Option<String>,
    /// Origins its requests may reach (declared by it and granted by the operator).
    pub egress: Vec<String>,
    /// Sources its manifest declares.
    pub sources: Vec<String>,
    /// Declared sources the operator granted it explicitly (for sources several
    /// plugins declare).
    pub granted_sources: Vec<String>,
    /// Identity platforms granted beyond its sources'.
    pub platforms: Vec<String>,
    /// Follow-up jobs for others it may enqueue, `TYPE:PLUGIN`.
    pub follow_ups: Vec<String>,
    /// Its budget: wall time, memory, requests per job.
    pub budget: Option<crate::runtime::Budget>,
}

impl PluginView {
    /// A registered plugin.
    pub fn of(plugin: &ReadyPlugin) -> Self {
        let manifest = &plugin.loaded.manifest;
        Self {
            id: plugin.id().to_owned(),
            version: Some(manifest.version.clone()),
            world: Some(plugin.role().world().to_owned()),
            contract: Some(plugin.loaded.wit_version.clone()),
            enabled: true,
            problem: None,
            egress: plugin
                .env
                .egress
                .policy()
                .allowed()
                .iter()
                .map(ToString::to_string)
                .collect(),
            sources: manifest.sources.clone(),
            granted_sources: plugin.grants.sources.iter().cloned().collect(),
            platforms: plugin.grants.platforms.iter().cloned().collect(),
            follow_ups: plugin
                .env
                .follow_up_grants
                .iter()
                .map(|g| format!("{}:{}", g.job_type, g.plugin))
                .collect(),
            budget: Some(plugin.budget),
        }
    }

    /// A plugin that did not load (a file in the plugins directory, or a row of the
    /// `plugins` table whose component does not load), listed under its id.
    pub fn not_loaded(id: &str, problem: &str) -> Self {
        Self {
            id: id.to_owned(),
            problem: Some(problem.to_owned()),
            ..Self::default()
        }
    }

    /// Every plugin `catalog` runs, by id, then the ids that did not load, with why.
    pub fn list(catalog: &crate::jobs::catalog::Catalog) -> Vec<Self> {
        let registry = catalog.shared().current();
        registry
            .ids()
            .iter()
            .filter_map(|id| registry.get(id))
            .map(|p| Self::of(&p))
            .chain(
                catalog
                    .not_loaded()
                    .iter()
                    .map(|(id, e)| Self::not_loaded(id, e)),
            )
            .collect()
    }
}

/// The plugin list the dashboard shows, replaced whenever the daemon's plugins change
/// (an install, upgrade, disable or a new file while serving: see `jobs::catalog`), so a
/// page always lists what runs now rather than what ran at start. A page takes the
/// current list once (a lock-free load, as `jobs::SharedRegistry` does).
#[derive(Debug, Clone, Default)]
pub struct PluginViews(std::sync::Arc<arc_swap::ArcSwap<Vec<PluginView>>>);

impl PluginViews {
    /// The list as it is now.
    pub fn current(&self) -> std::sync::Arc<Vec<PluginView>> {
        self.0.load_full()
    }

    /// Replaces the list for pages served from now on.
    pub fn replace(&self, list: Vec<PluginView>) {
        self.0.store(std::sync::Arc::new(list));
    }
}

impl From<Vec<PluginView>> for PluginViews {
    fn from(list: Vec<PluginView>) -> Self {
        Self(std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(list)))
    }
}

/// A Bull job as the lists show it.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// Queue job id.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// drowl's `data.type` (as written, when not a type drowl knows).
    pub job_type: String,
    /// `data.name`, else Bull's job name.
    pub name: String,
    /// The plugin it names or would run by default; `None` for host jobs and jobs that
    /// are not drowl jobs.
    pub plugin: Option<String>,
    /// Failed attempts so far.
    pub attempts_made: u32,
    /// Attempts allowed: its own, or the daemon's default for its type.
    pub attempts_allowed: u32,
    /// The last failure's message.
    pub failed_reason: Option<String>,
    /// When it was added (epoch ms).
    pub added: Option<i64>,
    /// When its latest attempt started (epoch ms).
    pub processed_on: Option<i64>,
    /// When it finished (epoch ms).
    pub finished_on: Option<i64>,
    /// The latest progress it reported.
    pub progress: Value,
    /// Its result, once completed (`usage` in it for plugin jobs).
    pub returnvalue: Option<Value>,
}

impl JobRow {
    /// Reads a Bull record; `defaults` are the daemon's, as its worker applies them.
    pub fn of(record: &JobRecord, defaults: &TypeDefaults) -> Self {
        let data = &record.data;
        let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
        let plugin = JobRequest::from_value(record.id.as_str(), data)
            .ok()
            .and_then(|r| crate::jobs::plugin_named_by(&r).map(str::to_owned));
        let info = JobInfo {
            id: record.id.clone(),
            name: record.name.clone(),
            data: data.clone(),
            opts: record.opts.clone(),
            attempts_made: record.attempts_made,
            timestamp: record.timestamp,
            processed_on: record.processed_on.unwrap_or(0),
            defaults: Some(defaults.for_data(data)),
        };
        Self {
            id: record.id.to_string(),
            state: record.state,
            job_type: text("type").unwrap_or_else(|| "?".to_owned()),
            name: text("name").unwrap_or_else(|| record.name.clone()),
            plugin,
            attempts_made: record.attempts_made,
            attempts_allowed: info.max_attempts(),
            failed_reason: record.failed_reason.clone().filter(|r| !r.is_empty()),
            added: record.timestamp,
            processed_on: record.processed_on,
            finished_on: record.finished_on,
            progress: record.progress.clone(),
            returnvalue: record.returnvalue.clone(),
        }
    }

    /// The `usage` a completed plugin job reported in its result.
    pub fn usage(&self) -> Option<&serde_json::Map<String, Value>> {
        self.returnvalue.as_ref()?.get("usage")?.as_object()
    }

    /// How long its last attempt ran, in milliseconds, once finished.
    pub fn run_ms(&self) -> Option<i64> {
        Some(self.finished_on? - self.processed_on?).filter(|ms| *ms >= 0)
    }
}

/// Bull's name for a state.
pub(super) fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Waiting => "waiting",
        JobState::Paused => "paused",
        JobState::Active => "active",
        JobState::Delayed => "delayed",
        JobState::Completed => "completed",
        JobState::Failed => "failed",
        JobState::Unknown => "unknown",
    }
}

/// Epoch milliseconds as `2026-05-01 09:30:12 UTC`.
pub(super) fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// Bytes as `512 B`, `1.5 KiB`, `3.0 MiB`, `1.2 GiB`.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A job id as one path segment: what is not unreserved is percent-encoded, so an id
/// with `/`, `?` or `#` in it still names its own page.
pub(super) fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(256 << 20), "256.0 MiB");
        assert_eq!(time(Some(1_767_225_600_000)), "2026-01-01 00:00:00 UTC");
        assert_eq!(time(None), "—");
        assert_eq!(
            path_segment("repeat:ab/c?d#e f"),
            "repeat:ab%2Fc%3Fd%23e%20f"
        );
        assert_eq!(path_segment("42"), "42");
    }
}
