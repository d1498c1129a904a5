-- A failed attempt that will be retried (moveToDelayed / retryJob). ARGV (built by
-- `Retry` in calls.rs): [1] prefix, [2] jobId, [3] lock token, [4] attemptsMade,
-- [5] stacktrace JSON, [6] failedReason, [7] mode ("delay"/"now"), [8] delayed score,
-- [9] runAt ms, [10] lifo ("1"/"0").
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
