//! The daemon's Prometheus metrics, served as text by `GET /metrics`.
//!
//! Recorded where a job's outcome is known (the queue handler), from what the job
//! reported: its type and plugin, how long it ran, what it stored, where its plugin sent
//! requests and which budgets it ran into. Queue depth is read from Redis when scraped.
//! Built on `prometheus-client` (the Prometheus project's own Rust client) rather than
//! formatting the exposition text by hand.
//!
//! Label values are bounded: job types are drowl's eight, plugin ids are those installed
//! (anything else is `other`), outcomes and budget kinds are the host's own names, and
//! egress is labelled by the origin that answered (a request refused by the egress checks,
//! or that got no answer, by `unanswered`).

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::capabilities::JobReport;

/// A job's type and plugin.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// drowl's job type.
    pub job_type: String,
    /// The installed plugin that ran it, `host` for host-computed jobs, `other` otherwise.
    pub plugin: String,
}

/// A job's type, plugin and how its attempt ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// drowl's job type.
    pub job_type: String,
    /// As in [`JobLabels`].
    pub plugin: String,
    /// `completed`, or the failure's code (`timeout`, `invalid-output`, ...).
    pub outcome: String,
}

/// Where a plugin's requests went.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EgressLabels {
    /// The plugin.
    pub plugin: String,
    /// The origin (scheme, host, port) that answered, `unanswered` otherwise.
    pub origin: String,
}

/// A budget a plugin ran into.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    /// The plugin.
    pub plugin: String,
    /// The budget's name (`log-bytes`, `kv-bytes`, ...).
    pub kind: String,
}

/// A state of Bull's queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `waiting`, `active`, `delayed`, `completed`, `failed`, `paused`.
    pub state: String,
}

/// Every metric the daemon exposes.
pub struct Metrics {
    registry: Registry,
    started: Family<JobLabels, Counter>,
    finished: Family<OutcomeLabels, Counter>,
    duration: Family<JobLabels, Histogram>,
    instantiate: Family<JobLabels, Histogram>,
    events_stored: Family<JobLabels, Counter>,
    object_bytes: Family<JobLabels, Counter>,
    egress_requests: Family<EgressLabels, Counter>,
    egress_bytes_in: Family<EgressLabels, Counter>,
    violations: Family<ViolationLabels, Counter>,
    queue_depth: Family<StateLabels, Gauge>,
    /// Plugin ids that may appear as label values.
    plugins: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn instantiate_histogram() -> Histogram {
    // 2 us to about 0.5 s: a pooled, precompiled instance takes tens of microseconds.
    Histogram::new(exponential_buckets(0.000_002, 2.0, 18))
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 4.4 min: no-op jobs take a millisecond, drowl's deadline is 5 min.
    Histogram::new(exponential_buckets(0.001, 2.0, 19))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("drowl");
        let started = Family::<JobLabels, Counter>::default();
        let finished = Family::<OutcomeLabels, Counter>::default();
        let duration =
            Family::<JobLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        let instantiate = Family::<JobLabels, Histogram>::new_with_constructor(
            instantiate_histogram as fn() -> _,
        );
        let events_stored = Family::<JobLabels, Counter>::default();
        let object_bytes = Family::<JobLabels, Counter>::default();
        let egress_requests = Family::<EgressLabels, Counter>::default();
        let egress_bytes_in = Family::<EgressLabels, Counter>::default();
        let violations = Family::<ViolationLabels, Counter>::default();
        let queue_depth = Family::<StateLabels, Gauge>::default();
        registry.register(
            "jobs_started",
            "Job attempts started, by type and plugin",
            started.clone(),
        );
        registry.register(
            "jobs_finished",
            "Job attempts finished, by type, plugin and outcome (completed or the failure code)",
            finished.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Wall time of a job attempt, by type and plugin",
            duration.clone(),
        );
        registry.register(
            "instantiate_seconds",
            "Time creating a job's store and instantiating its plugin, by type and plugin",
            instantiate.clone(),
        );
        registry.register(
            "events_stored",
            "Events stored by ingestion jobs (duplicates not counted)",
            events_stored.clone(),
        );
        registry.register(
            "object_bytes_written",
            "Bytes of objects plugins wrote",
            object_bytes.clone(),
        );
        registry.register(
            "egress_requests",
            "Outbound HTTP requests plugins made, by origin",
            egress_requests.clone(),
        );
        registry.register(
            "egress_response_bytes",
            "Response body bytes plugins received, by origin",
            egress_bytes_in.clone(),
        );
        registry.register(
            "budget_violations",
            "Budgets plugins ran into, by kind",
            violations.clone(),
        );
        registry.register(
            "queue_jobs",
            "Jobs in the queue by state, read from Redis when scraped",
            queue_depth.clone(),
        );
        Self {
            registry,
            started,
            finished,
            duration,
            instantiate,
            events_stored,
            object_bytes,
            egress_requests,
            egress_bytes_in,
            violations,
            queue_depth,
            plugins: Mutex::new(BTreeSet::new()),
        }
    }
}

impl Metrics {
    /// Sets the plugin ids that label values may name.
    pub fn set_plugins(&self, ids: &[String]) {
        *self.plugins.lock().unwrap_or_else(|e| e.into_inner()) = ids.iter().cloned().collect();
    }

    /// The installed plugin ids, sorted (the daemon updates them as the registry
    /// changes; the status page lists them).
    pub fn plugins(&self) -> Vec<String> {
        self.plugins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// `id` if it is an installed plugin (drowl's `x-plugin` spelling included), `other`
    /// otherwise: job input is the API's, and a label per value it sends would grow the
    /// exposition without bound.
    pub fn plugin_label(&self, id: Option<&str>) -> String {
        let plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        match id {
            None => "host".to_owned(),
            Some(id) if plugins.contains(id) => id.to_owned(),
            Some(id) => match id.strip_suffix("-plugin") {
                Some(bare) if plugins.contains(bare) => bare.to_owned(),
                _ => "other".to_owned(),
            },
        }
    }

    /// A job attempt starts.
    pub fn started(&self, labels: &JobLabels) {
        self.started.get_or_create(labels).inc();
    }

    /// A job attempt ended with `outcome` after `seconds`; `report` is what its plugin
    /// left, `events_stored` what an ingestion job stored.
    pub fn finished(
        &self,
        labels: &JobLabels,
        outcome: &str,
        seconds: f64,
        report: Option<&JobReport>,
        events_stored: u64,
    ) {
        self.finished
            .get_or_create(&OutcomeLabels {
                job_type: labels.job_type.clone(),
                plugin: labels.plugin.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.duration.get_or_create(labels).observe(seconds);
        if events_stored > 0 {
            self.events_stored
                .get_or_create(labels)
                .inc_by(events_stored);
        }
        let Some(report) = report else { return };
        self.instantiate
            .get_or_create(labels)
            .observe(report.usage.instantiate_us as f64 / 1e6);
        if report.usage.object_bytes_written > 0 {
            self.object_bytes
                .get_or_create(labels)
                .inc_by(report.usage.object_bytes_written);
        }
        for kind in &report.usage.violations {
            self.violations
                .get_or_create(&ViolationLabels {
                    plugin: labels.plugin.clone(),
                    kind: (*kind).to_owned(),
                })
                .inc();
        }
        for r in &report.requests {
            // Only a request that got an answer has an origin worth a label: a refused
            // one may name any host the plugin made up.
            let origin = match &r.origin {
                Some(o) if r.status.is_some() => o.clone(),
                _ => "unanswered".to_owned(),
            };
            let l = EgressLabels {
                plugin: labels.plugin.clone(),
                origin,
            };
            self.egress_requests.get_or_create(&l).inc();
            if r.bytes_in > 0 {
                self.egress_bytes_in.get_or_create(&l).inc_by(r.bytes_in);
            }
        }
    }

    /// Records the queue's counts per state (read from Redis by the caller).
    pub fn set_queue_depth(&self, counts: &[(&str, u64)]) {
        for (state, n) in counts {
            self.queue_depth
                .get_or_create(&StateLabels {
                    state: (*state).to_owned(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// The exposition text (Prometheus / OpenMetrics text format).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_durations_and_labels_are_exposed() {
        let m = Metrics::default();
        m.set_plugins(&["github".to_owned()]);
        assert_eq!(m.plugin_label(Some("github-plugin")), "github");
        assert_eq!(m.plugin_label(Some("evil-1234")), "other");
        assert_eq!(m.plugin_label(None), "host");
        let labels = JobLabels {
            job_type: "event_ingestion".into(),
            plugin: "github".into(),
        };
        m.started(&labels);
        m.finished(&labels, "completed", 0.25, None, 77);
        m.set_queue_depth(&[("waiting", 3)]);
        let text = m.encode();
        assert!(
            text.contains(
                r#"drowl_jobs_started_total{job_type="event_ingestion",plugin="github"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"drowl_jobs_finished_total{job_type="event_ingestion",plugin="github",outcome="completed"} 1"#
        ));
        assert!(text.contains(
            r#"drowl_job_duration_seconds_count{job_type="event_ingestion",plugin="github"} 1"#
        ));
        assert!(text.contains(
            r#"drowl_events_stored_total{job_type="event_ingestion",plugin="github"} 77"#
        ));
        assert!(text.contains(r#"drowl_queue_jobs{state="waiting"} 3"#));
    }
}
