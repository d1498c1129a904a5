-- Helpers shared by every script (prepended to each one before SCRIPT LOAD): where a
-- ready job goes (wait or paused), the priority insert, the lock check, the keep-jobs
-- trimming of finished sets, and takeJob (moveToActive's body, also chained by
-- moveToFinished).
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
