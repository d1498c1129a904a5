//! What this daemon has run lately, for the dashboard (`/ui`): attempts finished and
//! events stored per minute over the last hour, and the usage and egress log of its
//! latest attempts.
//!
//! Why kept here and not read back from Bull: Bull's `returnvalue` carries a completed
//! job's `usage` totals but not where its plugin's requests went, and a failed job keeps
//! only its `failedReason`; the report with both exists only in the daemon that ran the
//! attempt. Memory is bounded: [`MINUTES`] counters, the last [`ATTEMPTS_KEPT`]
//! attempts, at most [`REQUESTS_KEPT`] requests of each.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::capabilities::http::egress::RequestRecord;
use crate::capabilities::{JobReport, Usage};

/// Minutes of per-minute counts kept (the chart's width).
pub const MINUTES: usize = 60;
/// Attempts whose usage and egress log are kept.
pub const ATTEMPTS_KEPT: usize = 500;
/// Requests kept per attempt; the rest are counted in [`Attempt::requests_dropped`].
pub const REQUESTS_KEPT: usize = 100;
/// Bytes of a failure's message kept.
pub const ERROR_KEPT: usize = 2_000;

/// Counts for one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Minute {
    /// Minutes since the Unix epoch (UTC).
    pub minute: i64,
    /// Attempts that completed their job.
    pub completed: u64,
    /// Attempts that failed (retried or not).
    pub failed: u64,
    /// Events ingestion jobs stored (duplicates not counted).
    pub events: u64,
}

/// One attempt this daemon finished.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Queue job id.
    pub job_id: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// drowl job type.
    pub job_type: String,
    /// The plugin that ran it (`host` for host-computed jobs).
    pub plugin: String,
    /// `completed`, or the failure's code.
    pub outcome: String,
    /// The failure's message (as Bull's `failedReason` has it, secrets masked), at most
    /// [`ERROR_KEPT`] bytes.
    pub error: Option<String>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How long it ran, in milliseconds.
    pub elapsed_ms: u64,
    /// What the plugin used, when a plugin ran.
    pub usage: Option<Usage>,
    /// Its outbound requests, in order (the first [`REQUESTS_KEPT`]).
    pub requests: Vec<RequestRecord>,
    /// Requests made past [`REQUESTS_KEPT`], not kept.
    pub requests_dropped: usize,
}

impl Attempt {
    /// An attempt that ended now, with what its report says (a host-computed job has no
    /// report). Add the failure's message with [`Attempt::failed_with`].
    pub fn new(
        job_id: &str,
        attempt: u32,
        job_type: &str,
        plugin: &str,
        outcome: &str,
        elapsed: std::time::Duration,
        report: Option<&JobReport>,
    ) -> Self {
        let requests = report.map(|r| r.requests.as_slice()).unwrap_or_default();
        Self {
            job_id: job_id.to_owned(),
            attempt,
            job_type: job_type.to_owned(),
            plugin: plugin.to_owned(),
            outcome: outcome.to_owned(),
            error: None,
            finished_at: Utc::now(),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            usage: report.map(|r| r.usage.clone()),
            requests: requests.iter().take(REQUESTS_KEPT).cloned().collect(),
            requests_dropped: requests.len().saturating_sub(REQUESTS_KEPT),
        }
    }

    /// The attempt with its failure's message, cut to [`ERROR_KEPT`] bytes.
    #[must_use]
    pub fn failed_with(mut self, message: &str) -> Self {
        let mut end = message.len().min(ERROR_KEPT);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        self.error = Some(message[..end].to_owned());
        self
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first; only minutes with something in them.
    minutes: VecDeque<Minute>,
    /// Oldest first.
    attempts: VecDeque<Attempt>,
}

/// The daemon's recent activity (see the module docs).
#[derive(Debug, Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

impl Activity {
    /// Records a finished attempt and the events it stored.
    pub fn record(&self, attempt: Attempt, events: u64) {
        let minute = minute_of(attempt.finished_at);
        let completed = attempt.outcome == "completed";
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.minutes.back_mut() {
            Some(m) if m.minute == minute => add(m, completed, events),
            _ => {
                let mut m = Minute {
                    minute,
                    ..Minute::default()
                };
                add(&mut m, completed, events);
                inner.minutes.push_back(m);
                // Clocks may step back: keep the last hour of whatever was recorded.
                while inner
                    .minutes
                    .front()
                    .is_some_and(|f| f.minute <= minute - MINUTES as i64)
                {
                    inner.minutes.pop_front();
                }
            }
        }
        if inner.attempts.len() == ATTEMPTS_KEPT {
            inner.attempts.pop_front();
        }
        inner.attempts.push_back(attempt);
    }

    /// The [`MINUTES`] minutes up to and including `now`'s, oldest first, each with its
    /// counts (zero when nothing finished in it).
    pub fn per_minute(&self, now: DateTime<Utc>) -> Vec<Minute> {
        let last = minute_of(now);
        let first = last - MINUTES as i64 + 1;
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (first..=last)
            .map(|minute| {
                inner
                    .minutes
                    .iter()
                    .find(|m| m.minute == minute)
                    .copied()
                    .unwrap_or(Minute {
                        minute,
                        ..Minute::default()
                    })
            })
            .collect()
    }

    /// The kept attempts of job `id`, in the order they ended.
    pub fn attempts_of(&self, id: &str) -> Vec<Attempt> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .attempts
            .iter()
            .filter(|a| a.job_id == id)
            .cloned()
            .collect()
    }
}

fn add(m: &mut Minute, completed: bool, events: u64) {
    if completed {
        m.completed += 1;
    } else {
        m.failed += 1;
    }
    m.events += events;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(job: &str, outcome: &str, when: DateTime<Utc>) -> Attempt {
        let mut a = Attempt::new(
            job,
            1,
            "event_ingestion",
            "hostile",
            outcome,
            std::time::Duration::from_millis(5),
            None,
        );
        a.finished_at = when;
        a
    }

    #[test]
    fn counts_land_in_their_minute_and_the_last_hour_is_kept() {
        let activity = Activity::default();
        // A whole minute (1.8e9 s is 30 million minutes).
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        activity.record(at("1", "completed", t0), 3);
        activity.record(at("2", "timeout", t0 + chrono::Duration::seconds(59)), 0);
        activity.record(at("3", "completed", t0 + chrono::Duration::minutes(2)), 4);
        let series = activity.per_minute(t0 + chrono::Duration::minutes(2));
        assert_eq!(series.len(), MINUTES);
        let last = series[MINUTES - 1];
        assert_eq!((last.completed, last.failed, last.events), (1, 0, 4));
        assert_eq!(
            series[MINUTES - 2],
            Minute {
                minute: minute_of(t0) + 1,
                ..Minute::default()
            }
        );
        let first = series[MINUTES - 3];
        assert_eq!((first.completed, first.failed, first.events), (1, 1, 3));
        // An hour later the old minutes are gone from the chart and from memory.
        let later = t0 + chrono::Duration::minutes(MINUTES as i64 + 2);
        activity.record(at("4", "completed", later), 0);
        let series = activity.per_minute(later);
        assert_eq!(
            series.iter().map(|m| m.completed + m.failed).sum::<u64>(),
            1
        );
        assert_eq!(activity.inner.lock().expect("lock").minutes.len(), 1);
    }

    #[test]
    fn the_latest_attempts_are_kept_with_their_requests_bounded() {
        let activity = Activity::default();
        let now = Utc::now();
        for i in 0..ATTEMPTS_KEPT + 3 {
            activity.record(at(&i.to_string(), "completed", now), 0);
        }
        assert!(
            activity.attempts_of("0").is_empty(),
            "the oldest went first"
        );
        assert_eq!(
            activity.attempts_of(&(ATTEMPTS_KEPT + 2).to_string()).len(),
            1
        );
        let report = JobReport {
            usage: Usage::default(),
            logs: Vec::new(),
            follow_ups: Vec::new(),
            requests: vec![RequestRecord::default(); REQUESTS_KEPT + 7],
        };
        let a = Attempt::new(
            "x",
            2,
            "event_ingestion",
            "github",
            "completed",
            std::time::Duration::from_millis(1),
            Some(&report),
        );
        assert_eq!((a.requests.len(), a.requests_dropped), (REQUESTS_KEPT, 7));
        assert_eq!(a.usage, Some(Usage::default()));
        let long = "é".repeat(ERROR_KEPT);
        let failed = a.failed_with(&long);
        let kept = failed.error.expect("kept");
        assert!(
            kept.len() <= ERROR_KEPT && long.starts_with(&kept),
            "cut on a char boundary"
        );
    }
}
