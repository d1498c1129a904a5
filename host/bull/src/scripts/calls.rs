//! Typed calls of the scripts: one struct per script, its arguments as named fields, and
//! [`ScriptCall::invocation`] laying them out in the order the Lua reads them.
//!
//! Why here and not at the call sites: the Lua addresses its arguments by position
//! (`ARGV[13]`), so the positions must be written down exactly once, next to the scripts,
//! together with how values are encoded (flags as `"1"`/`"0"`, durations in ms, "none" as
//! an empty string or `0`). Call sites only fill in fields.

use std::time::Duration;

use serde_json::Value;

use super::{Invocation, Script, ScriptCall, Scripts};
use crate::config::RateLimit;

/// A script's ARGV (none of them takes KEYS).
fn argv(argv: Vec<String>) -> Invocation {
    Invocation {
        keys: Vec::new(),
        argv,
    }
}

/// A boolean as the scripts compare it: `"1"` or `"0"`.
fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

/// The limiter arguments of the scripts that take jobs: max (0 = none), window ms.
fn limiter_argv(limiter: Option<RateLimit>) -> [String; 2] {
    match limiter {
        Some(l) => [l.max.to_string(), l.duration.as_millis().to_string()],
        None => ["0".to_owned(), "0".to_owned()],
    }
}

/// A job's score in `delayed`, as Bull computes it: the due time in ms times 0x1000, plus
/// the low 12 bits of a numeric id so jobs due in the same ms keep their order.
pub(crate) fn delayed_score(id: &str, run_at: i64) -> i64 {
    let low = id.parse::<i64>().map_or(0, |n| n & 0xfff);
    run_at.saturating_mul(0x1000) + low
}

/// Registering a repeatable's schedule along with its next run (addJob).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RepeatEntry<'a> {
    /// The member of `P:repeat`.
    pub(crate) key: &'a str,
    /// When the run is due (epoch ms), its score in `P:repeat`.
    pub(crate) millis: i64,
    /// Add nothing unless the schedule is still registered (a worker scheduling the next
    /// run must not revive a schedule `removeRepeatable` deleted).
    pub(crate) only_if_registered: bool,
}

/// addJob: store a job's hash and put it in wait/paused (priority and lifo honoured) or
/// `delayed`. Replies with the job id (also for a duplicate custom id, a silent no-op), or
/// nil when `repeat.only_if_registered` found the schedule gone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AddJob<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// Custom id; `""` takes the next value of `P:id`.
    pub(crate) custom_id: &'a str,
    /// Job name.
    pub(crate) name: &'a str,
    /// The `data` field, already serialized.
    pub(crate) data: &'a str,
    /// The `opts` field, already serialized.
    pub(crate) opts_json: &'a str,
    /// When the job was added (epoch ms).
    pub(crate) timestamp: i64,
    /// The delay stored in the hash (ms).
    pub(crate) delay: i64,
    /// When a delayed job is due (epoch ms); 0 = not delayed.
    pub(crate) run_at: i64,
    /// 0 = none, 1 = highest.
    pub(crate) priority: i64,
    /// Push to the pop end.
    pub(crate) lifo: bool,
    /// The process token (suffix of the `waiting@`/`duplicated@` events).
    pub(crate) token: &'a str,
    /// Also register the repeatable's schedule.
    pub(crate) repeat: Option<RepeatEntry<'a>>,
}

impl ScriptCall for AddJob<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.add_job
    }

    fn invocation(&self) -> Invocation {
        let (repeat_key, repeat_millis, check) = match self.repeat {
            Some(r) => (r.key.to_owned(), r.millis.to_string(), r.only_if_registered),
            None => (String::new(), String::new(), false),
        };
        argv(vec![
            self.prefix.to_owned(),
            self.custom_id.to_owned(),
            self.name.to_owned(),
            self.data.to_owned(),
            self.opts_json.to_owned(),
            self.timestamp.to_string(),
            self.delay.to_string(),
            self.run_at.to_string(),
            self.priority.to_string(),
            flag(self.lifo),
            self.token.to_owned(),
            repeat_key,
            repeat_millis,
            flag(check),
        ])
    }
}

/// moveToActive: take a job (popping it here with RPOPLPUSH, or one BRPOPLPUSH already
/// moved to `active`), lock it and stamp `processedOn`. Replies nil when the queue is
/// empty, `{id}` when the job's hash is gone (it is dropped from `active`),
/// `{id, false, ms}` when the rate limiter sent it to `delayed` for ms, or
/// `{id, HGETALL}` with the lock taken.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MoveToActive<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The id a blocking pop moved to `active`; `None` pops inside the script.
    pub(crate) job_id: Option<&'a str>,
    /// The lock value for this attempt.
    pub(crate) token: &'a str,
    /// How long the lock lives.
    pub(crate) lock_duration: Duration,
    /// Epoch ms.
    pub(crate) now: i64,
    /// The queue's rate limiter, if any.
    pub(crate) limiter: Option<RateLimit>,
}

impl ScriptCall for MoveToActive<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.move_to_active
    }

    fn invocation(&self) -> Invocation {
        let [limit_max, limit_ms] = limiter_argv(self.limiter);
        argv(vec![
            self.prefix.to_owned(),
            self.job_id.unwrap_or_default().to_owned(),
            self.token.to_owned(),
            self.lock_duration.as_millis().to_string(),
            self.now.to_string(),
            limit_max,
            limit_ms,
        ])
    }
}

/// extendLock for many running attempts in one round trip. Replies one 1/0 per lock, in
/// order: 1 when the lock was still that attempt's and has been extended.
#[derive(Clone, Debug)]
pub(crate) struct ExtendLocks<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The new lifetime of each lock.
    pub(crate) lock_duration: Duration,
    /// `(job id, lock token)` per running attempt.
    pub(crate) locks: Vec<(&'a str, &'a str)>,
}

impl ScriptCall for ExtendLocks<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.extend_locks
    }

    fn invocation(&self) -> Invocation {
        let mut args = Vec::with_capacity(2 + 2 * self.locks.len());
        args.push(self.prefix.to_owned());
        args.push(self.lock_duration.as_millis().to_string());
        for (id, token) in &self.locks {
            args.push((*id).to_owned());
            args.push((*token).to_owned());
        }
        argv(args)
    }
}

/// How an attempt ended for moveToFinished.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Finished<'a> {
    /// Into `completed` with this `returnvalue` (serialized).
    Completed {
        /// The handler's result as JSON text.
        returnvalue: &'a str,
    },
    /// Into `failed` for good, recording the attempt.
    Failed {
        /// The `failedReason`.
        reason: &'a str,
        /// Failed attempts including this one.
        attempts_made: u32,
        /// The `stacktrace` field (a JSON array of strings).
        stacktrace_json: &'a str,
    },
}

/// The job to take in the same round trip after finishing one (Bull's moveToFinished
/// fetches the next job so a busy slot never idles).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TakeNext<'a> {
    /// Whether to take one at all (not while shutting down, not on a retried finish).
    pub(crate) enabled: bool,
    /// The lock value for the next job's attempt.
    pub(crate) token: &'a str,
    /// How long its lock lives.
    pub(crate) lock_duration: Duration,
    /// The queue's rate limiter, if any.
    pub(crate) limiter: Option<RateLimit>,
}

/// moveToFinished: completed, or failed for good. Nothing is written unless `token` holds
/// the lock and the job is active; replies 0 or Bull's negative code, or, when the next
/// job was taken, `{0, moveToActive reply}`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MoveToFinished<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The job.
    pub(crate) job_id: &'a str,
    /// This attempt's lock value.
    pub(crate) token: &'a str,
    /// Completed or failed, with what to record.
    pub(crate) outcome: Finished<'a>,
    /// Epoch ms (`finishedOn`, the score in the finished set).
    pub(crate) now: i64,
    /// How many finished jobs to keep: −1 all, 0 none (the job is deleted).
    pub(crate) keep_count: i64,
    /// Remove finished jobs older than this many seconds.
    pub(crate) keep_age: Option<u64>,
    /// The next job to take in the same round trip.
    pub(crate) next: TakeNext<'a>,
}

impl ScriptCall for MoveToFinished<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.move_to_finished
    }

    fn invocation(&self) -> Invocation {
        let (target, field, value, attempts_made, stacktrace) = match self.outcome {
            Finished::Completed { returnvalue } => {
                ("completed", "returnvalue", returnvalue, String::new(), "")
            }
            Finished::Failed {
                reason,
                attempts_made,
                stacktrace_json,
            } => (
                "failed",
                "failedReason",
                reason,
                attempts_made.to_string(),
                stacktrace_json,
            ),
        };
        let event = serde_json::json!({"jobId": self.job_id, "val": value}).to_string();
        let [limit_max, limit_ms] = limiter_argv(self.next.limiter);
        argv(vec![
            self.prefix.to_owned(),
            self.job_id.to_owned(),
            self.token.to_owned(),
            target.to_owned(),
            field.to_owned(),
            value.to_owned(),
            self.now.to_string(),
            self.keep_count.to_string(),
            self.keep_age.map(|a| a.to_string()).unwrap_or_default(),
            event,
            attempts_made,
            stacktrace.to_owned(),
            flag(self.next.enabled),
            self.next.lock_duration.as_millis().to_string(),
            self.next.token.to_owned(),
            limit_max,
            limit_ms,
        ])
    }
}

/// Where a retried job goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryTo {
    /// Into `delayed` until this epoch-ms time (moveToDelayed).
    Delayed {
        /// When the retry is due.
        run_at: i64,
    },
    /// Back to wait/paused at once, priority honoured (retryJob).
    Wait,
}

/// A failed attempt that will be retried: records the attempt, releases the lock and
/// moves the job per [`RetryTo`]. Replies 0 or Bull's negative code (nothing changed).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The job.
    pub(crate) job_id: &'a str,
    /// This attempt's lock value.
    pub(crate) token: &'a str,
    /// Failed attempts including this one.
    pub(crate) attempts_made: u32,
    /// The `stacktrace` field (a JSON array of strings).
    pub(crate) stacktrace_json: &'a str,
    /// The `failedReason`.
    pub(crate) failed_reason: &'a str,
    /// Delayed or straight back to wait.
    pub(crate) to: RetryTo,
    /// Push to the pop end when going back to wait.
    pub(crate) lifo: bool,
}

impl ScriptCall for Retry<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.retry
    }

    fn invocation(&self) -> Invocation {
        let (mode, score, run_at) = match self.to {
            RetryTo::Delayed { run_at } => ("delay", delayed_score(self.job_id, run_at), run_at),
            RetryTo::Wait => ("now", 0, 0),
        };
        argv(vec![
            self.prefix.to_owned(),
            self.job_id.to_owned(),
            self.token.to_owned(),
            self.attempts_made.to_string(),
            self.stacktrace_json.to_owned(),
            self.failed_reason.to_owned(),
            mode.to_owned(),
            score.to_string(),
            run_at.to_string(),
            flag(self.lifo),
        ])
    }
}

/// Graceful-shutdown release: give up a job this attempt still holds and put it at the
/// front of the line so another worker takes it at once. Replies 0 or Bull's negative code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Release<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The job.
    pub(crate) job_id: &'a str,
    /// This attempt's lock value.
    pub(crate) token: &'a str,
}

impl ScriptCall for Release<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.release
    }

    fn invocation(&self) -> Invocation {
        argv(vec![
            self.prefix.to_owned(),
            self.job_id.to_owned(),
            self.token.to_owned(),
        ])
    }
}

/// Give back a job that could not start here (a per-type limit is full): release the lock
/// and move it to `delayed`, attempts untouched. Replies 0 or Bull's negative code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Postpone<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The job.
    pub(crate) job_id: &'a str,
    /// This attempt's lock value.
    pub(crate) token: &'a str,
    /// When the job is due again (epoch ms).
    pub(crate) run_at: i64,
}

impl ScriptCall for Postpone<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.postpone
    }

    fn invocation(&self) -> Invocation {
        argv(vec![
            self.prefix.to_owned(),
            self.job_id.to_owned(),
            self.token.to_owned(),
            delayed_score(self.job_id, self.run_at).to_string(),
            self.run_at.to_string(),
        ])
    }
}

/// Undo a blocking pop that raced with shutdown (the job is in `active` with no lock): put
/// it back at the front of the line. Replies 1 when it was put back, else 0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequeueUnlocked<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The popped job.
    pub(crate) job_id: &'a str,
    /// The process token (suffix of the `waiting@` event).
    pub(crate) token: &'a str,
}

impl ScriptCall for RequeueUnlocked<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.requeue_unlocked
    }

    fn invocation(&self) -> Invocation {
        argv(vec![
            self.prefix.to_owned(),
            self.job_id.to_owned(),
            self.token.to_owned(),
        ])
    }
}

/// updateDelaySet, the delayed-job promoter: moves jobs due by `now` (≤1000 per call) to
/// wait/paused and replies the next due time in ms (0 when nothing is delayed), also
/// published on `delayed`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpdateDelaySet<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// Epoch ms: every job due at or before it is promoted.
    pub(crate) now: i64,
    /// The process token (suffix of the `waiting@` events).
    pub(crate) token: &'a str,
}

impl ScriptCall for UpdateDelaySet<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.update_delay_set
    }

    fn invocation(&self) -> Invocation {
        // The highest score of anything due in `now`'s millisecond (see `delayed_score`).
        let max_score = self.now.saturating_mul(0x1000) + 0xfff;
        argv(vec![
            self.prefix.to_owned(),
            max_score.to_string(),
            self.token.to_owned(),
        ])
    }
}

/// moveStalledJobsToWait: requeue (or fail, past `max_stalled_count`) active jobs whose
/// lock expired since the last check. Replies `{failedIds, requeuedIds}`; does nothing
/// while another worker's check holds `stalled-check`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MoveStalledJobsToWait<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// Epoch ms.
    pub(crate) now: i64,
    /// How long `stalled-check` holds off other checks.
    pub(crate) stalled_interval: Duration,
    /// Stalls allowed before the job is failed.
    pub(crate) max_stalled_count: u32,
    /// The process token.
    pub(crate) token: &'a str,
}

impl ScriptCall for MoveStalledJobsToWait<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.move_stalled_jobs_to_wait
    }

    fn invocation(&self) -> Invocation {
        argv(vec![
            self.prefix.to_owned(),
            self.now.to_string(),
            self.stalled_interval.as_millis().to_string(),
            self.max_stalled_count.to_string(),
            self.token.to_owned(),
        ])
    }
}

/// Global pause or resume (renames wait/paused, sets `meta-paused`, publishes). Replies 0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PauseResume<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// Pause (true) or resume (false).
    pub(crate) pause: bool,
}

impl ScriptCall for PauseResume<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.pause
    }

    fn invocation(&self) -> Invocation {
        let what = if self.pause { "paused" } else { "resumed" };
        argv(vec![self.prefix.to_owned(), what.to_owned()])
    }
}

/// updateProgress: set `progress` and publish it. Replies 0, or -1 when the job is gone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpdateProgress<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The job.
    pub(crate) job_id: &'a str,
    /// The new progress.
    pub(crate) progress: &'a Value,
}

impl ScriptCall for UpdateProgress<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.update_progress
    }

    fn invocation(&self) -> Invocation {
        let event =
            serde_json::json!({"jobId": self.job_id, "progress": self.progress}).to_string();
        argv(vec![
            self.prefix.to_owned(),
            self.job_id.to_owned(),
            self.progress.to_string(),
            event,
        ])
    }
}

/// addLog: append a row to the job's log. Replies the number of rows, or -1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AddLog<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The job.
    pub(crate) job_id: &'a str,
    /// The line.
    pub(crate) row: &'a str,
}

impl ScriptCall for AddLog<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.add_log
    }

    fn invocation(&self) -> Invocation {
        argv(vec![
            self.prefix.to_owned(),
            self.job_id.to_owned(),
            self.row.to_owned(),
        ])
    }
}

/// getJobCounts. Replies the sizes of wait, active, paused, completed, failed, delayed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GetJobCounts<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
}

impl ScriptCall for GetJobCounts<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.get_job_counts
    }

    fn invocation(&self) -> Invocation {
        argv(vec![self.prefix.to_owned()])
    }
}

/// A job's hash and where it is. Replies `{state, HGETALL}`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GetJob<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The job.
    pub(crate) job_id: &'a str,
}

impl ScriptCall for GetJob<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.get_job
    }

    fn invocation(&self) -> Invocation {
        argv(vec![self.prefix.to_owned(), self.job_id.to_owned()])
    }
}

/// removeRepeatable: unregister a schedule and drop its pending run. Replies 1 when the
/// schedule was registered, else 0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RemoveRepeatable<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// `repeat:<md5>:`, the schedule's run ids without their millis.
    pub(crate) run_id_stem: &'a str,
    /// The member of `P:repeat`.
    pub(crate) key: &'a str,
}

impl ScriptCall for RemoveRepeatable<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.remove_repeatable
    }

    fn invocation(&self) -> Invocation {
        argv(vec![
            self.prefix.to_owned(),
            self.run_id_stem.to_owned(),
            self.key.to_owned(),
        ])
    }
}

/// `run_now.lua`: a delayed or failed job made ready to run at once.
pub(crate) struct RunNow<'a> {
    /// `<prefix>:<queue>:`.
    pub(crate) prefix: &'a str,
    /// The job.
    pub(crate) id: &'a str,
    /// Now, in ms since the epoch (`retriedOn`).
    pub(crate) now_ms: i64,
    /// The caller's token, for the `waiting@token` event channel.
    pub(crate) token: &'a str,
}

impl ScriptCall for RunNow<'_> {
    fn script(scripts: &Scripts) -> &Script {
        &scripts.run_now
    }

    fn invocation(&self) -> Invocation {
        argv(vec![
            self.prefix.to_owned(),
            self.id.to_owned(),
            self.now_ms.to_string(),
            self.token.to_owned(),
        ])
    }
}

#[cfg(test)]
mod tests {
    //! The ARGV layouts, pinned: each list is what the call sites sent before the calls
    //! were typed, and what the `.lua` files index.

    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    const LIMIT: Option<RateLimit> = Some(RateLimit {
        max: 5,
        duration: Duration::from_millis(1000),
    });

    #[test]
    fn add_job_layout() {
        let mut call = AddJob {
            prefix: "bull:q:",
            custom_id: "",
            name: "n",
            data: "{}",
            opts_json: r#"{"attempts":1}"#,
            timestamp: 1000,
            delay: 50,
            run_at: 1050,
            priority: 2,
            lifo: true,
            token: "tok",
            repeat: None,
        };
        let want = [
            "bull:q:",
            "",
            "n",
            "{}",
            r#"{"attempts":1}"#,
            "1000",
            "50",
            "1050",
            "2",
            "1",
            "tok",
            "",
            "",
            "0",
        ];
        assert_eq!(call.invocation().argv, strings(&want));
        assert!(call.invocation().keys.is_empty());
        call.repeat = Some(RepeatEntry {
            key: "n:::1000",
            millis: 2000,
            only_if_registered: true,
        });
        let argv = call.invocation().argv;
        assert_eq!(argv[11..], strings(&["n:::1000", "2000", "1"]));
    }

    #[test]
    fn move_to_active_layout() {
        let call = MoveToActive {
            prefix: "bull:q:",
            job_id: None,
            token: "tok:1",
            lock_duration: Duration::from_secs(30),
            now: 77,
            limiter: None,
        };
        let want = ["bull:q:", "", "tok:1", "30000", "77", "0", "0"];
        assert_eq!(call.invocation().argv, strings(&want));
        let popped = MoveToActive {
            job_id: Some("9"),
            limiter: LIMIT,
            ..call
        };
        let want = ["bull:q:", "9", "tok:1", "30000", "77", "5", "1000"];
        assert_eq!(popped.invocation().argv, strings(&want));
    }

    #[test]
    fn extend_locks_layout() {
        let call = ExtendLocks {
            prefix: "bull:q:",
            lock_duration: Duration::from_millis(1500),
            locks: vec![("1", "t:0"), ("2", "t:1")],
        };
        let want = ["bull:q:", "1500", "1", "t:0", "2", "t:1"];
        assert_eq!(call.invocation().argv, strings(&want));
    }

    #[test]
    fn move_to_finished_layout() {
        let next = TakeNext {
            enabled: true,
            token: "t:2",
            lock_duration: Duration::from_secs(30),
            limiter: None,
        };
        let completed = MoveToFinished {
            prefix: "bull:q:",
            job_id: "7",
            token: "t:1",
            outcome: Finished::Completed {
                returnvalue: r#"{"ok":true}"#,
            },
            now: 1234,
            keep_count: -1,
            keep_age: None,
            next,
        };
        let want = [
            "bull:q:",
            "7",
            "t:1",
            "completed",
            "returnvalue",
            r#"{"ok":true}"#,
            "1234",
            "-1",
            "",
            r#"{"jobId":"7","val":"{\"ok\":true}"}"#,
            "",
            "",
            "1",
            "30000",
            "t:2",
            "0",
            "0",
        ];
        assert_eq!(completed.invocation().argv, strings(&want));

        let failed = MoveToFinished {
            outcome: Finished::Failed {
                reason: "boom",
                attempts_made: 3,
                stacktrace_json: r#"["Error: boom"]"#,
            },
            keep_count: 10,
            keep_age: Some(60),
            next: TakeNext {
                enabled: false,
                limiter: LIMIT,
                ..next
            },
            ..completed
        };
        let want = [
            "bull:q:",
            "7",
            "t:1",
            "failed",
            "failedReason",
            "boom",
            "1234",
            "10",
            "60",
            r#"{"jobId":"7","val":"boom"}"#,
            "3",
            r#"["Error: boom"]"#,
            "0",
            "30000",
            "t:2",
            "5",
            "1000",
        ];
        assert_eq!(failed.invocation().argv, strings(&want));
    }

    #[test]
    fn retry_and_postpone_layout() {
        let delayed = Retry {
            prefix: "bull:q:",
            job_id: "4097",
            token: "t:1",
            attempts_made: 1,
            stacktrace_json: "[]",
            failed_reason: "x",
            to: RetryTo::Delayed { run_at: 10 },
            lifo: false,
        };
        // 10 * 0x1000 + (4097 & 0xfff)
        let want = [
            "bull:q:", "4097", "t:1", "1", "[]", "x", "delay", "40961", "10", "0",
        ];
        assert_eq!(delayed.invocation().argv, strings(&want));
        let now = Retry {
            to: RetryTo::Wait,
            lifo: true,
            ..delayed
        };
        let want = [
            "bull:q:", "4097", "t:1", "1", "[]", "x", "now", "0", "0", "1",
        ];
        assert_eq!(now.invocation().argv, strings(&want));

        let postpone = Postpone {
            prefix: "bull:q:",
            job_id: "custom-id",
            token: "t:1",
            run_at: 10,
        };
        let want = ["bull:q:", "custom-id", "t:1", "40960", "10"];
        assert_eq!(postpone.invocation().argv, strings(&want));
    }

    #[test]
    fn periodic_duty_layouts() {
        let promote = UpdateDelaySet {
            prefix: "bull:q:",
            now: 1,
            token: "tok",
        };
        assert_eq!(
            promote.invocation().argv,
            strings(&["bull:q:", "8191", "tok"])
        );
        let stalled = MoveStalledJobsToWait {
            prefix: "bull:q:",
            now: 99,
            stalled_interval: Duration::from_secs(30),
            max_stalled_count: 1,
            token: "tok",
        };
        assert_eq!(
            stalled.invocation().argv,
            strings(&["bull:q:", "99", "30000", "1", "tok"])
        );
    }

    #[test]
    fn admin_layouts() {
        let pause = PauseResume {
            prefix: "bull:q:",
            pause: true,
        };
        assert_eq!(pause.invocation().argv, strings(&["bull:q:", "paused"]));
        let resume = PauseResume {
            pause: false,
            ..pause
        };
        assert_eq!(resume.invocation().argv, strings(&["bull:q:", "resumed"]));
        let progress = serde_json::json!(50);
        let call = UpdateProgress {
            prefix: "bull:q:",
            job_id: "3",
            progress: &progress,
        };
        assert_eq!(
            call.invocation().argv,
            strings(&["bull:q:", "3", "50", r#"{"jobId":"3","progress":50}"#])
        );
    }
}
