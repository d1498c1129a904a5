//! The producer/admin handle: add jobs exactly as Bull's `addJob` does, read counts and
//! jobs, pause and resume.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fred::prelude::{Client, ClientLike};
use fred::types::Value as RedisValue;
use serde_json::{Map, Value};

use crate::config::QueueConfig;
use crate::conn;
use crate::error::QueueError;
use crate::job::{JobCounts, JobId, JobOptions, JobRecord, JobState, apply_default_opts};
use crate::keys::Keys;
use crate::repeat;
use crate::scripts::Scripts;
use crate::scripts::calls::{
    AddJob, AddLog, GetJob, GetJobCounts, PauseResume, RemoveRepeatable, RepeatEntry,
    UpdateProgress,
};

/// Milliseconds since the epoch, the unit of every Bull timestamp.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What a queue handle and a worker share: the connection, key names, scripts and the
/// per-process token (Bull's `queue.token`: the event suffix, and the stem of the worker's
/// per-attempt lock values).
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub(crate) client: Client,
    pub(crate) keys: Keys,
    pub(crate) scripts: Arc<Scripts>,
    pub(crate) token: String,
    pub(crate) config: QueueConfig,
}

impl Core {
    pub(crate) async fn connect(config: &QueueConfig) -> Result<Self, QueueError> {
        config.validate()?;
        let client = conn::command_client(config).await?;
        Ok(Self {
            client,
            keys: Keys::new(&config.prefix, &config.queue_name),
            scripts: Scripts::new(),
            token: uuid::Uuid::new_v4().to_string(),
            config: config.clone(),
        })
    }

    /// Bull's addJob script. `repeat` = (repeat key, run millis, check that the repeatable
    /// still exists). Returns `None` only when the repeatable was removed.
    pub(crate) async fn add_job_raw(
        &self,
        name: &str,
        data: String,
        opts: &Map<String, Value>,
        repeat: Option<(&str, i64, bool)>,
    ) -> Result<Option<JobId>, QueueError> {
        // `opts` is what gets stored, as is; the script's own arguments come from its typed
        // reading.
        let typed = JobOptions::from_stored_map(opts);
        let timestamp = typed.stored_timestamp().unwrap_or_else(now_ms);
        let delay = typed
            .delay
            .map_or(0, |d| i64::try_from(d).unwrap_or(i64::MAX));
        let run_at = if delay > 0 { timestamp + delay } else { 0 };
        let priority = typed
            .priority
            .map_or(0, |p| i64::try_from(p).unwrap_or(i64::MAX));
        let lifo = typed.is_lifo();
        let opts_json = serde_json::to_string(opts)?;
        let call = AddJob {
            prefix: self.keys.base(),
            custom_id: typed.job_id.as_deref().unwrap_or_default(),
            name,
            data: &data,
            opts_json: &opts_json,
            timestamp,
            delay,
            run_at,
            priority,
            lifo,
            token: &self.token,
            repeat: repeat.map(|(key, millis, only_if_registered)| RepeatEntry {
                key,
                millis,
                only_if_registered,
            }),
        };
        let reply = self.scripts.run(&self.client, &call).await?;
        Ok(redis_string(&reply).map(JobId))
    }

    /// Schedule the run after the one described by `opts` (Bull's `nextRepeatableJob`).
    /// `skip_check` is true when the producer adds the first run; a worker checks that the
    /// repeatable still exists so `removeRepeatable` stops the chain.
    pub(crate) async fn schedule_next_repeat(
        &self,
        name: &str,
        data: String,
        opts: &Map<String, Value>,
        skip_check: bool,
    ) -> Result<Option<JobId>, QueueError> {
        let Some(next) = repeat::next_run(name, opts, now_ms())? else {
            return Ok(None);
        };
        self.add_job_raw(
            name,
            data,
            &next.opts,
            Some((&next.repeat_key, next.millis, !skip_check)),
        )
        .await
    }

    pub(crate) async fn progress(&self, id: &str, progress: &Value) -> Result<(), QueueError> {
        let call = UpdateProgress {
            prefix: self.keys.base(),
            job_id: id,
            progress,
        };
        let rc = self.scripts.run(&self.client, &call).await?;
        match redis_i64(&rc) {
            Some(0) => Ok(()),
            Some(code) => Err(QueueError::from_code(id, code)),
            None => Err(QueueError::Protocol(format!("updateProgress: {rc:?}"))),
        }
    }

    pub(crate) async fn log(&self, id: &str, row: &str) -> Result<u64, QueueError> {
        let call = AddLog {
            prefix: self.keys.base(),
            job_id: id,
            row,
        };
        let rc = self.scripts.run(&self.client, &call).await?;
        match redis_i64(&rc) {
            Some(n) if n >= 0 => Ok(u64::try_from(n).unwrap_or(0)),
            Some(code) => Err(QueueError::from_code(id, code)),
            None => Err(QueueError::Protocol(format!("addLog: {rc:?}"))),
        }
    }
}

/// Producer and admin handle on one queue.
///
/// Why separate from [`Worker`](crate::Worker): the host's `enqueue` and `jobs` commands, and
/// tests, need to add and inspect jobs without consuming any.
#[derive(Debug, Clone)]
pub struct Queue {
    core: Core,
}

impl Queue {
    /// Connect to Redis (retrying until it answers) and check the eviction policy.
    pub async fn connect(config: &QueueConfig) -> Result<Self, QueueError> {
        let core = Core::connect(config).await?;
        conn::check_eviction_policy(&core.client).await;
        Ok(Self { core })
    }

    pub(crate) fn from_core(core: Core) -> Self {
        Self { core }
    }

    /// The settings this handle was opened with.
    #[must_use]
    pub fn config(&self) -> &QueueConfig {
        &self.core.config
    }

    /// `<prefix>:<queue>:<suffix>`, for callers that need a raw key (tests, diagnostics).
    #[must_use]
    pub fn key(&self, suffix: &str) -> String {
        self.core.keys.key(suffix)
    }

    /// The underlying command connection, for diagnostics and tests.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.core.client
    }

    /// Add a job as Bull's `queue.add(name, data, opts)` does: the same hash fields, custom
    /// id deduplication, delay, priority insertion, lifo, paused handling; a repeatable job
    /// registers its schedule and adds its first run. Returns the id (for a repeatable job,
    /// the id of the first run; for a duplicate custom id, that id).
    pub async fn add(
        &self,
        name: &str,
        data: Value,
        opts: JobOptions,
    ) -> Result<JobId, QueueError> {
        let mut map = match serde_json::to_value(&opts)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let data = serde_json::to_string(&data)?;
        if opts.repeat.is_some() {
            if let Some(c) = opts.repeat.as_ref().and_then(|r| r.cron.as_ref()) {
                repeat::parse_cron(c)?;
            }
            return self
                .core
                .schedule_next_repeat(name, data, &map, true)
                .await?
                .ok_or_else(|| {
                    QueueError::InvalidOptions(
                        "repeat options produce no run (limit or endDate reached)".to_owned(),
                    )
                });
        }
        apply_default_opts(&mut map, now_ms());
        self.core
            .add_job_raw(name, data, &map, None)
            .await?
            .ok_or_else(|| QueueError::Protocol("addJob returned nil".to_owned()))
    }

    /// Sizes of wait, active, completed, failed, delayed and paused (Bull's
    /// `getJobCounts()`).
    pub async fn get_job_counts(&self) -> Result<JobCounts, QueueError> {
        let call = GetJobCounts {
            prefix: self.core.keys.base(),
        };
        let reply = self.core.scripts.run(&self.core.client, &call).await?;
        let n: Vec<u64> = reply
            .into_array()
            .iter()
            .map(|v| {
                redis_i64(v)
                    .and_then(|i| u64::try_from(i).ok())
                    .unwrap_or(0)
            })
            .collect();
        if n.len() != 6 {
            return Err(QueueError::Protocol("getJobCounts".to_owned()));
        }
        Ok(JobCounts {
            waiting: n[0],
            active: n[1],
            paused: n[2],
            completed: n[3],
            failed: n[4],
            delayed: n[5],
        })
    }

    /// A job's state and fields, or `None` when its hash does not exist (never added, or
    /// removed by removeOnComplete/removeOnFail).
    pub async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        let call = GetJob {
            prefix: self.core.keys.base(),
            job_id: id,
        };
        let reply = self.core.scripts.run(&self.core.client, &call).await?;
        let mut parts = reply.into_array().into_iter();
        let state = parts
            .next()
            .as_ref()
            .and_then(redis_string)
            .unwrap_or_default();
        let fields = parts.next().map(hash_from_flat).unwrap_or_default();
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(Some(JobRecord::from_hash(
            id,
            JobState::parse(&state),
            fields,
        )))
    }

    /// Ids of the jobs in `state` from `start` to `end` (inclusive, 0-based; −1 is the
    /// last), newest first, as Bull's `getRanges([state], start, end, false)` reads them:
    /// `wait`, `active` and `paused` from their pushing end, `completed` and `failed` by
    /// finish time, `delayed` latest due first. [`JobState::Unknown`] has no list: empty.
    ///
    /// Why: a dashboard lists the latest failed or completed jobs without reading every
    /// job of the queue.
    pub async fn job_ids(
        &self,
        state: JobState,
        start: i64,
        end: i64,
    ) -> Result<Vec<JobId>, QueueError> {
        use fred::prelude::{ListInterface, SortedSetsInterface};
        let client = &self.core.client;
        let ids: Vec<String> = match state {
            JobState::Waiting => {
                client
                    .lrange(self.core.keys.key("wait"), start, end)
                    .await?
            }
            JobState::Active => {
                client
                    .lrange(self.core.keys.key("active"), start, end)
                    .await?
            }
            JobState::Paused => {
                client
                    .lrange(self.core.keys.key("paused"), start, end)
                    .await?
            }
            JobState::Completed | JobState::Failed | JobState::Delayed => {
                let key = match state {
                    JobState::Completed => "completed",
                    JobState::Failed => "failed",
                    _ => "delayed",
                };
                // ZRANGE … REV: ZREVRANGE's successor.
                client
                    .zrange(self.core.keys.key(key), start, end, None, true, None, false)
                    .await?
            }
            JobState::Unknown => Vec::new(),
        };
        Ok(ids.into_iter().map(JobId).collect())
    }

    /// The jobs [`Queue::job_ids`] lists, read as [`Queue::get_job`] reads them (side by
    /// side on the one connection); a job removed in between is left out, and each
    /// record's `state` is where the job is when it is read.
    pub async fn jobs(
        &self,
        state: JobState,
        start: i64,
        end: i64,
    ) -> Result<Vec<JobRecord>, QueueError> {
        let ids = self.job_ids(state, start, end).await?;
        let reads = ids.iter().map(|id| self.get_job(id.as_str()));
        let mut out = Vec::with_capacity(ids.len());
        for record in futures::future::join_all(reads).await {
            if let Some(r) = record? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Pause the queue globally (Bull's `queue.pause()`): `wait` is renamed to `paused` and
    /// new jobs go there until [`Queue::resume`].
    pub async fn pause(&self) -> Result<(), QueueError> {
        self.pause_resume(true).await
    }

    /// Resume a globally paused queue (Bull's `queue.resume()`).
    pub async fn resume(&self) -> Result<(), QueueError> {
        self.pause_resume(false).await
    }

    async fn pause_resume(&self, pause: bool) -> Result<(), QueueError> {
        let call = PauseResume {
            prefix: self.core.keys.base(),
            pause,
        };
        self.core.scripts.run(&self.core.client, &call).await?;
        Ok(())
    }

    /// Whether the queue is globally paused.
    pub async fn is_paused(&self) -> Result<bool, QueueError> {
        use fred::prelude::KeysInterface;
        let n: i64 = self
            .core
            .client
            .exists(self.core.keys.key("meta-paused"))
            .await?;
        Ok(n == 1)
    }

    /// Repeatable schedules as `(repeat key, next run ms)`, like `getRepeatableJobs()`.
    pub async fn get_repeatable_keys(&self) -> Result<Vec<(String, i64)>, QueueError> {
        use fred::prelude::SortedSetsInterface;
        let v: Vec<(String, f64)> = self
            .core
            .client
            .zrange(self.core.keys.key("repeat"), 0, -1, None, false, None, true)
            .await?;
        Ok(v.into_iter().map(|(k, s)| (k, s as i64)).collect())
    }

    /// Registered schedules, soonest first, read as Bull's `getRepeatableJobs(0, -1, true)`.
    pub async fn get_repeatable_jobs(&self) -> Result<Vec<repeat::RepeatableJob>, QueueError> {
        Ok(self
            .get_repeatable_keys()
            .await?
            .into_iter()
            .map(|(key, next)| repeat::RepeatableJob::from_key(&key, next))
            .collect())
    }

    /// Unregister a schedule and drop its pending run (Bull's `removeRepeatableByKey`).
    /// Returns whether it was registered. A worker holding a run of it schedules no next
    /// one, as it checks the schedule is still registered.
    pub async fn remove_repeatable_by_key(&self, key: &str) -> Result<bool, QueueError> {
        let stem = repeat::RepeatableJob::from_key(key, 0).run_id_stem();
        let call = RemoveRepeatable {
            prefix: self.core.keys.base(),
            run_id_stem: &stem,
            key,
        };
        let reply = self.core.scripts.run(&self.core.client, &call).await?;
        Ok(redis_i64(&reply) == Some(1))
    }

    /// Makes a delayed or failed job ready to run at once (Bull's `job.promote()` and
    /// `job.retry()` in one): what it was, or why it could not be run now.
    pub async fn run_now(&self, id: &str) -> Result<RanNow, QueueError> {
        let call = crate::scripts::calls::RunNow {
            prefix: self.core.keys.base(),
            id,
            now_ms: now_ms(),
            token: &self.core.token,
        };
        let reply = self.core.scripts.run(&self.core.client, &call).await?;
        Ok(match redis_i64(&reply) {
            Some(1) => RanNow::Promoted,
            Some(2) => RanNow::Retried,
            Some(0) => RanNow::NotFound,
            Some(-1) => RanNow::Running,
            _ => RanNow::NotDelayedOrFailed,
        })
    }

    /// Delete every key of this queue (for tests and operators resetting a queue). Not
    /// atomic; do not run it while workers are active.
    pub async fn obliterate(&self) -> Result<u64, QueueError> {
        use fred::prelude::KeysInterface;
        let pattern = format!("{}*", glob_escape(self.core.keys.base()));
        let mut cursor = "0".to_owned();
        let mut deleted = 0u64;
        loop {
            let reply: (String, Vec<String>) = self
                .core
                .client
                .custom(
                    conn::cmd("SCAN"),
                    vec![
                        cursor.clone(),
                        "MATCH".into(),
                        pattern.clone(),
                        "COUNT".into(),
                        "1000".into(),
                    ],
                )
                .await?;
            if !reply.1.is_empty() {
                let n: u64 = self.core.client.del(reply.1).await?;
                deleted += n;
            }
            cursor = reply.0;
            if cursor == "0" {
                return Ok(deleted);
            }
        }
    }

    /// Close the connection.
    pub async fn close(self) -> Result<(), QueueError> {
        self.core.client.quit().await?;
        Ok(())
    }
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Redis reply as a string, when it is one.
pub(crate) fn redis_string(v: &RedisValue) -> Option<String> {
    match v {
        RedisValue::String(_) | RedisValue::Bytes(_) | RedisValue::Integer(_) => v.as_string(),
        _ => None,
    }
}

/// A Redis reply as an integer, when it is one.
pub(crate) fn redis_i64(v: &RedisValue) -> Option<i64> {
    match v {
        RedisValue::Integer(i) => Some(*i),
        RedisValue::String(_) | RedisValue::Bytes(_) => v.as_string()?.parse().ok(),
        _ => None,
    }
}

/// HGETALL's flat `[field, value, …]` array as a map.
pub(crate) fn hash_from_flat(v: RedisValue) -> HashMap<String, String> {
    let items = v.into_array();
    let mut out = HashMap::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(val)) = (it.next(), it.next()) {
        if let (Some(k), Some(val)) = (redis_string(&k), redis_string(&val)) {
            out.insert(k, val);
        }
    }
    out
}

/// What [`Queue::run_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RanNow {
    /// A delayed job now waits to run.
    Promoted,
    /// A failed job now waits to run again (its attempts made are kept).
    Retried,
    /// No job has that id.
    NotFound,
    /// The job is running (its lock is held).
    Running,
    /// The job is waiting already, or has completed.
    NotDelayedOrFailed,
}
