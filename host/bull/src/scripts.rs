//! The Lua scripts that move jobs between Bull's lists and sets, written from the protocol
//! description (Bull 4.12.9+ semantics), and a small runner that loads them by SHA.
//!
//! Every script takes no KEYS and receives the `<prefix>:<queue>:` string as `ARGV[1]`; key
//! names are built inside, as Bull's own scripts do (Redis Cluster needs a hash-tag prefix).

use std::sync::Arc;

use fred::prelude::{Client, LuaInterface};
use fred::types::Value;
use tokio::sync::RwLock;

use crate::error::QueueError;

/// Helpers shared by the scripts: where a ready job goes (wait or paused), the priority
/// insert, the lock check, and the keep-jobs trimming of finished sets.
const PRELUDE: &str = r#"
local rcall = redis.call

-- Pushes go to `paused` while the queue is globally paused.
local function targetList(prefix)
  if rcall("EXISTS", prefix .. "meta-paused") == 1 then
    return prefix .. "paused"
  end
  return prefix .. "wait"
end

-- Lower number = higher priority. Prioritized jobs sit at the pop (right) end in priority
-- order, FIFO within one priority; unprioritized jobs are LPUSHed behind them.
local function pushWithPriority(prefix, target, priority, jobId)
  local prioKey = prefix .. "priority"
  rcall("ZADD", prioKey, priority, jobId)
  local count = rcall("ZCOUNT", prioKey, 0, priority)
  local len = rcall("LLEN", target)
  local idx = len - (count - 1)
  if idx < 0 then idx = 0 end
  local pivot = rcall("LINDEX", target, idx)
  if pivot then
    rcall("LINSERT", target, "BEFORE", pivot, jobId)
  else
    rcall("RPUSH", target, jobId)
  end
end

local function enqueue(prefix, jobId, priority, lifo)
  local target = targetList(prefix)
  if priority and priority > 0 then
    pushWithPriority(prefix, target, priority, jobId)
  elseif lifo then
    rcall("RPUSH", target, jobId)
  else
    rcall("LPUSH", target, jobId)
  end
  return target
end

-- 0 when `token` holds the lock (which is then released); otherwise Bull's code:
-- -2 no lock at all, -6 held by someone else.
local function releaseLock(prefix, jobKey, token, jobId)
  local lockKey = jobKey .. ":lock"
  local holder = rcall("GET", lockKey)
  if holder == token then
    rcall("DEL", lockKey)
    rcall("SREM", prefix .. "stalled", jobId)
    return 0
  end
  if holder then
    return -6
  end
  return -2
end

-- How every script that ends an attempt starts: 0 once `token`'s lock is released and the
-- job is out of `active`; otherwise Bull's code (-1 no job, -2 no lock, -6 someone else's
-- lock, -3 not active), and nothing has been changed.
local function leaveActive(prefix, jobKey, token, jobId)
  if rcall("EXISTS", jobKey) == 0 then
    return -1
  end
  local rc = releaseLock(prefix, jobKey, token, jobId)
  if rc ~= 0 then
    return rc
  end
  if rcall("LREM", prefix .. "active", -1, jobId) == 0 then
    return -3
  end
  return 0
end

local function deleteJob(prefix, jobId)
  rcall("DEL", prefix .. jobId, prefix .. jobId .. ":logs")
end

-- Puts a finished job into `completed`/`failed` (or deletes it) and trims the set by
-- age (seconds) and count; count -1 keeps everything, count 0 keeps nothing.
local function finishJob(prefix, target, jobId, field, value, now, keepCount, keepAge)
  local jobKey = prefix .. jobId
  local setKey = prefix .. target
  if keepCount == 0 then
    deleteJob(prefix, jobId)
    return
  end
  rcall("ZADD", setKey, now, jobId)
  rcall("HMSET", jobKey, field, value, "finishedOn", now)
  if keepAge and keepAge > 0 then
    local oldest = now - keepAge * 1000
    local old = rcall("ZRANGEBYSCORE", setKey, "-inf", oldest)
    for _, id in ipairs(old) do
      deleteJob(prefix, id)
    end
    rcall("ZREMRANGEBYSCORE", setKey, "-inf", oldest)
  end
  if keepCount > 0 then
    local extra = rcall("ZREVRANGE", setKey, keepCount, -1)
    if #extra > 0 then
      for _, id in ipairs(extra) do
        deleteJob(prefix, id)
      end
      rcall("ZREMRANGEBYRANK", setKey, 0, -(keepCount + 1))
    end
  end
end

-- removeOnComplete/removeOnFail as stored in the job's opts JSON -> keepCount, keepAge.
local function keepFromOpts(optsJson, field)
  local ok, opts = pcall(cjson.decode, optsJson or "{}")
  if not ok or type(opts) ~= "table" then
    return -1, nil
  end
  local v = opts[field]
  if v == true then
    return 0, nil
  end
  if type(v) == "number" then
    return v, nil
  end
  if type(v) == "table" then
    local count = -1
    local age = nil
    if type(v["count"]) == "number" then count = v["count"] end
    if type(v["age"]) == "number" then age = v["age"] end
    return count, age
  end
  return -1, nil
end

-- moveToActive: pop (RPOPLPUSH) unless an id popped by BRPOPLPUSH is given, take the lock,
-- stamp processedOn. nil when empty, {id} when the job's hash is gone, {id, false, ms} when
-- the rate limiter (limitMax jobs per limitMs, 0 = none) turned it away to `delayed` for
-- ms, else {id, HGETALL}.
local function takeJob(prefix, jobId, token, lockDuration, now, limitMax, limitMs)
  if jobId == "" then
    jobId = rcall("RPOPLPUSH", prefix .. "wait", prefix .. "active")
    if not jobId then
      rcall("PUBLISH", prefix .. "drained", "")
      return false
    end
  end
  local jobKey = prefix .. jobId
  rcall("SREM", prefix .. "stalled", jobId)
  rcall("ZREM", prefix .. "priority", jobId)
  if rcall("EXISTS", jobKey) == 0 then
    rcall("LREM", prefix .. "active", -1, jobId)
    return {jobId}
  end
  limitMax = tonumber(limitMax) or 0
  if limitMax > 0 then
    local limiterKey = prefix .. "limiter"
    local started = rcall("INCR", limiterKey)
    if started == 1 then
      rcall("PEXPIRE", limiterKey, limitMs)
    end
    if started > limitMax then
      local wait = tonumber(rcall("PTTL", limiterKey))
      if wait < 0 then
        rcall("PEXPIRE", limiterKey, limitMs)
        wait = tonumber(limitMs)
      end
      local runAt = tonumber(now) + wait
      rcall("LREM", prefix .. "active", -1, jobId)
      rcall("ZADD", prefix .. "delayed", runAt * 0x1000 + bit.band(started, 0xfff), jobId)
      rcall("PUBLISH", prefix .. "delayed", runAt)
      return {jobId, false, wait}
    end
  end
  rcall("SET", jobKey .. ":lock", token, "PX", lockDuration)
  rcall("PUBLISH", prefix .. "active@" .. token, jobId)
  rcall("HSET", jobKey, "processedOn", now)
  return {jobId, rcall("HGETALL", jobKey)}
end
"#;

/// addJob. ARGV: prefix, customId, name, data, opts, timestamp, delay, runAt (0 = not
/// delayed), priority, lifo ("1"/"0"), token, repeatKey ("" = none), repeatMillis,
/// checkRepeatExists ("1"/"0").
///
/// Returns the job id (also for a duplicate custom id, which is a silent no-op), or nil
/// when a repeatable job was removed in the meantime.
const ADD_JOB: &str = r#"
local prefix = ARGV[1]
if ARGV[12] ~= "" then
  local repeatKey = prefix .. "repeat"
  if ARGV[14] == "1" and not rcall("ZSCORE", repeatKey, ARGV[12]) then
    return false
  end
  rcall("ZADD", repeatKey, ARGV[13], ARGV[12])
end
local counter = rcall("INCR", prefix .. "id")
local jobId = ARGV[2]
if jobId == "" then
  jobId = tostring(counter)
elseif rcall("EXISTS", prefix .. jobId) == 1 then
  rcall("PUBLISH", prefix .. "duplicated@" .. ARGV[11], jobId)
  return jobId
end
rcall("HMSET", prefix .. jobId, "name", ARGV[3], "data", ARGV[4], "opts", ARGV[5],
  "timestamp", ARGV[6], "delay", ARGV[7], "priority", ARGV[9])
local runAt = tonumber(ARGV[8])
if runAt ~= 0 then
  rcall("ZADD", prefix .. "delayed", runAt * 0x1000 + bit.band(counter, 0xfff), jobId)
  rcall("PUBLISH", prefix .. "delayed", ARGV[8])
else
  enqueue(prefix, jobId, tonumber(ARGV[9]), ARGV[10] == "1")
  rcall("PUBLISH", prefix .. "waiting@" .. ARGV[11], jobId)
end
return jobId
"#;

/// moveToActive. ARGV: prefix, jobId ("" = RPOPLPUSH here), token, lockDuration ms, now,
/// limiter max (0 = none), limiter window ms.
///
/// Returns nil when the queue is empty, `{id}` when the popped job has no hash any more
/// (it is dropped from `active`), `{id, false, ms}` when the rate limiter sent it to
/// `delayed` for ms, or `{id, HGETALL}` with the lock taken.
const MOVE_TO_ACTIVE: &str = r#"
return takeJob(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
"#;

/// extendLock for many jobs in one round trip. ARGV: prefix, duration ms, then one
/// (id, token) pair per running attempt. Returns one 1/0 per pair: 1 when the lock was
/// still that attempt's and has been extended.
const EXTEND_LOCKS: &str = r#"
local prefix = ARGV[1]
local out = {}
for i = 3, #ARGV - 1, 2 do
  local id = ARGV[i]
  local token = ARGV[i + 1]
  local lockKey = prefix .. id .. ":lock"
  if rcall("GET", lockKey) == token then
    rcall("SET", lockKey, token, "PX", ARGV[2])
    rcall("SREM", prefix .. "stalled", id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#;

/// moveToFinished (completed, or failed for good). ARGV: prefix, jobId, token, target set,
/// field (returnvalue/failedReason), value, now, keepCount, keepAge ("" = none), event JSON,
/// attemptsMade ("" = leave), stacktrace JSON, fetchNext ("1"/"0"), lockDuration ms, the
/// lock token for the next job (each attempt has its own), limiter max, limiter window ms.
///
/// Nothing is written unless the caller holds the lock and the job is active; returns 0 or
/// Bull's negative code — or, with fetchNext and a job waiting, `{0, takeJob reply}` so the
/// slot goes straight on to the next job in the same round trip (as Bull does).
const FINISH: &str = r#"
local prefix = ARGV[1]
local jobId = ARGV[2]
local jobKey = prefix .. jobId
local rc = leaveActive(prefix, jobKey, ARGV[3], jobId)
if rc ~= 0 then
  return rc
end
if ARGV[11] ~= "" then
  rcall("HMSET", jobKey, "attemptsMade", ARGV[11], "stacktrace", ARGV[12], "failedReason", ARGV[6])
end
finishJob(prefix, ARGV[4], jobId, ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]))
rcall("PUBLISH", prefix .. ARGV[4], ARGV[10])
if ARGV[13] == "1" then
  local nextJob = takeJob(prefix, "", ARGV[15], ARGV[14], ARGV[7], ARGV[16], ARGV[17])
  if nextJob then
    return {0, nextJob}
  end
end
return 0
"#;

/// A failed attempt that will be retried: records the attempt, releases the lock and moves
/// the job to `delayed` (moveToDelayed) or back to wait/paused (retryJob, priority honoured).
/// ARGV: prefix, jobId, token, attemptsMade, stacktrace JSON, failedReason, mode
/// ("delay"/"now"), delayed score, runAt ms, lifo ("1"/"0").
const RETRY: &str = r#"
local prefix = ARGV[1]
local jobId = ARGV[2]
local jobKey = prefix .. jobId
local rc = leaveActive(prefix, jobKey, ARGV[3], jobId)
if rc ~= 0 then
  return rc
end
rcall("HMSET", jobKey, "attemptsMade", ARGV[4], "stacktrace", ARGV[5], "failedReason", ARGV[6])
if ARGV[7] == "delay" then
  rcall("ZADD", prefix .. "delayed", ARGV[8], jobId)
  rcall("PUBLISH", prefix .. "delayed", ARGV[9])
else
  local priority = tonumber(rcall("HGET", jobKey, "priority") or "0") or 0
  enqueue(prefix, jobId, priority, ARGV[10] == "1")
  rcall("PUBLISH", prefix .. "waiting@" .. ARGV[3], jobId)
end
return 0
"#;

/// Graceful-shutdown release: give up a job we still hold and put it at the front of the
/// line so another worker takes it at once. ARGV: prefix, jobId, token.
const RELEASE: &str = r#"
local prefix = ARGV[1]
local jobId = ARGV[2]
local jobKey = prefix .. jobId
local rc = leaveActive(prefix, jobKey, ARGV[3], jobId)
if rc ~= 0 then
  return rc
end
rcall("RPUSH", targetList(prefix), jobId)
rcall("PUBLISH", prefix .. "waiting@" .. ARGV[3], jobId)
return 0
"#;

/// Give back a job that could not start here (a per-type limit is full): release the
/// lock and move it to `delayed`, attempts untouched. ARGV: prefix, jobId, token, delayed
/// score, runAt ms.
const POSTPONE: &str = r#"
local prefix = ARGV[1]
local jobId = ARGV[2]
local jobKey = prefix .. jobId
local rc = leaveActive(prefix, jobKey, ARGV[3], jobId)
if rc ~= 0 then
  return rc
end
rcall("ZADD", prefix .. "delayed", ARGV[4], jobId)
rcall("PUBLISH", prefix .. "delayed", ARGV[5])
return 0
"#;

/// Undo a blocking pop that raced with shutdown (the job is in `active` with no lock):
/// put it back at the front of the line. ARGV: prefix, jobId, token.
const REQUEUE_UNLOCKED: &str = r#"
local prefix = ARGV[1]
local jobId = ARGV[2]
if rcall("EXISTS", prefix .. jobId .. ":lock") == 1 then
  return 0
end
if rcall("LREM", prefix .. "active", -1, jobId) == 0 then
  return 0
end
rcall("RPUSH", targetList(prefix), jobId)
rcall("PUBLISH", prefix .. "waiting@" .. ARGV[3], jobId)
return 1
"#;

/// updateDelaySet (the delayed-job promoter). ARGV: prefix, max score (now*4096+4095),
/// token. Promotes due jobs (≤1000 per call) to wait/paused and returns the next due time
/// in ms (0 when nothing is delayed), also published on `delayed`.
const PROMOTE: &str = r#"
local prefix = ARGV[1]
local delayedKey = prefix .. "delayed"
local due = rcall("ZRANGEBYSCORE", delayedKey, 0, ARGV[2], "LIMIT", 0, 1000)
for _, id in ipairs(due) do
  rcall("ZREM", delayedKey, id)
  local jobKey = prefix .. id
  if rcall("EXISTS", jobKey) == 1 then
    rcall("LREM", prefix .. "active", 0, id)
    local priority = tonumber(rcall("HGET", jobKey, "priority") or "0") or 0
    enqueue(prefix, id, priority, false)
    rcall("PUBLISH", prefix .. "waiting@" .. ARGV[3], id)
    rcall("HSET", jobKey, "delay", 0)
  end
end
local nextJob = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
if nextJob[2] then
  local nextTs = math.floor(tonumber(nextJob[2]) / 0x1000)
  rcall("PUBLISH", delayedKey, string.format("%d", nextTs))
  return nextTs
end
return 0
"#;

/// moveStalledJobsToWait. ARGV: prefix, now, stalledInterval ms, maxStalledCount, token.
/// Returns `{failedIds, requeuedIds}`; does nothing while `stalled-check` exists.
const STALLED: &str = r#"
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local checkKey = prefix .. "stalled-check"
if rcall("EXISTS", checkKey) == 1 then
  return {{}, {}}
end
rcall("SET", checkKey, ARGV[2], "PX", ARGV[3])
local stalledKey = prefix .. "stalled"
local activeKey = prefix .. "active"
local maxStalled = tonumber(ARGV[4])
local failed = {}
local requeued = {}
local stalling = rcall("SMEMBERS", stalledKey)
if #stalling > 0 then
  rcall("DEL", stalledKey)
  for _, id in ipairs(stalling) do
    local jobKey = prefix .. id
    if rcall("EXISTS", jobKey .. ":lock") == 0 and rcall("LREM", activeKey, 1, id) > 0 then
      if rcall("EXISTS", jobKey) == 1 then
        local n = rcall("HINCRBY", jobKey, "stalledCounter", 1)
        if n > maxStalled then
          local keepCount, keepAge = keepFromOpts(rcall("HGET", jobKey, "opts"), "removeOnFail")
          finishJob(prefix, "failed", id, "failedReason", "job stalled more than allowable limit",
            now, keepCount, keepAge)
          rcall("PUBLISH", prefix .. "failed",
            cjson.encode({jobId = id, val = "job stalled more than maxStalledCount"}))
          failed[#failed + 1] = id
        else
          rcall("RPUSH", targetList(prefix), id)
          rcall("PUBLISH", prefix .. "stalled@", id)
          requeued[#requeued + 1] = id
        end
      end
    end
  end
end
local active = rcall("LRANGE", activeKey, 0, -1)
for i = 1, #active, 7000 do
  rcall("SADD", stalledKey, unpack(active, i, math.min(i + 6999, #active)))
end
return {failed, requeued}
"#;

/// Global pause/resume. ARGV: prefix, "paused" or "resumed".
const PAUSE: &str = r#"
local prefix = ARGV[1]
local src, dst = prefix .. "wait", prefix .. "paused"
if ARGV[2] ~= "paused" then
  src, dst = dst, src
end
if rcall("EXISTS", src) == 1 then
  rcall("RENAME", src, dst)
end
if ARGV[2] == "paused" then
  rcall("SET", prefix .. "meta-paused", 1)
  rcall("HSET", prefix .. "meta", "paused", 1)
else
  rcall("DEL", prefix .. "meta-paused")
  rcall("HDEL", prefix .. "meta", "paused")
end
rcall("PUBLISH", prefix .. ARGV[2], ARGV[2])
return 0
"#;

/// updateProgress. ARGV: prefix, jobId, progress JSON, event JSON.
const PROGRESS: &str = r#"
local jobKey = ARGV[1] .. ARGV[2]
if rcall("EXISTS", jobKey) == 1 then
  rcall("HSET", jobKey, "progress", ARGV[3])
  rcall("PUBLISH", ARGV[1] .. "progress", ARGV[4])
  return 0
end
return -1
"#;

/// addLog. ARGV: prefix, jobId, row. Returns the number of rows, or -1.
const ADD_LOG: &str = r#"
local jobKey = ARGV[1] .. ARGV[2]
if rcall("EXISTS", jobKey) == 1 then
  return rcall("RPUSH", jobKey .. ":logs", ARGV[3])
end
return -1
"#;

/// getJobCounts: wait, active, paused, completed, failed, delayed.
const COUNTS: &str = r#"
local p = ARGV[1]
return {rcall("LLEN", p .. "wait"), rcall("LLEN", p .. "active"), rcall("LLEN", p .. "paused"),
  rcall("ZCARD", p .. "completed"), rcall("ZCARD", p .. "failed"), rcall("ZCARD", p .. "delayed")}
"#;

/// A job's hash and its state. ARGV: prefix, jobId. Returns `{state, HGETALL}`.
const GET_JOB: &str = r#"
local p = ARGV[1]
local id = ARGV[2]
local fields = rcall("HGETALL", p .. id)
local state = "unknown"
if rcall("ZSCORE", p .. "completed", id) then state = "completed"
elseif rcall("ZSCORE", p .. "failed", id) then state = "failed"
elseif rcall("ZSCORE", p .. "delayed", id) then state = "delayed"
elseif rcall("LPOS", p .. "active", id) then state = "active"
elseif rcall("LPOS", p .. "wait", id) then state = "waiting"
elseif rcall("LPOS", p .. "paused", id) then state = "paused"
end
return {state, fields}
"#;

/// One script: its source (prelude included) and its SHA once loaded.
#[derive(Debug)]
pub(crate) struct Script {
    name: &'static str,
    body: &'static str,
    sha: RwLock<Option<String>>,
}

impl Script {
    const fn new(name: &'static str, body: &'static str) -> Self {
        Self {
            name,
            body,
            sha: RwLock::const_new(None),
        }
    }

    fn source(&self) -> String {
        format!("{PRELUDE}\n{}", self.body)
    }

    /// EVALSHA, loading the script first if needed and again after `NOSCRIPT` (a restarted
    /// Redis has forgotten it).
    pub(crate) async fn run(
        &self,
        client: &Client,
        args: Vec<String>,
    ) -> Result<Value, QueueError> {
        for _ in 0..2 {
            let sha = self.sha(client).await?;
            match client
                .evalsha::<Value, _, _, _>(sha.as_str(), Vec::<String>::new(), args.clone())
                .await
            {
                Ok(v) => return Ok(v),
                Err(e) if e.details().contains("NOSCRIPT") => {
                    *self.sha.write().await = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(QueueError::Protocol(format!(
            "script {} could not be loaded",
            self.name
        )))
    }

    async fn sha(&self, client: &Client) -> Result<String, QueueError> {
        if let Some(sha) = self.sha.read().await.as_ref() {
            return Ok(sha.clone());
        }
        let sha: String = client.script_load(self.source()).await?;
        *self.sha.write().await = Some(sha.clone());
        Ok(sha)
    }
}

/// All scripts, shared by a queue handle and its worker.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) add_job: Script,
    pub(crate) move_to_active: Script,
    pub(crate) extend_locks: Script,
    pub(crate) finish: Script,
    pub(crate) retry: Script,
    pub(crate) release: Script,
    pub(crate) postpone: Script,
    pub(crate) requeue_unlocked: Script,
    pub(crate) promote: Script,
    pub(crate) stalled: Script,
    pub(crate) pause: Script,
    pub(crate) progress: Script,
    pub(crate) add_log: Script,
    pub(crate) counts: Script,
    pub(crate) get_job: Script,
}

impl Scripts {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            add_job: Script::new("addJob", ADD_JOB),
            move_to_active: Script::new("moveToActive", MOVE_TO_ACTIVE),
            extend_locks: Script::new("extendLocks", EXTEND_LOCKS),
            finish: Script::new("moveToFinished", FINISH),
            retry: Script::new("retry", RETRY),
            release: Script::new("release", RELEASE),
            postpone: Script::new("postpone", POSTPONE),
            requeue_unlocked: Script::new("requeueUnlocked", REQUEUE_UNLOCKED),
            promote: Script::new("updateDelaySet", PROMOTE),
            stalled: Script::new("moveStalledJobsToWait", STALLED),
            pause: Script::new("pause", PAUSE),
            progress: Script::new("updateProgress", PROGRESS),
            add_log: Script::new("addLog", ADD_LOG),
            counts: Script::new("getJobCounts", COUNTS),
            get_job: Script::new("getJob", GET_JOB),
        })
    }
}
