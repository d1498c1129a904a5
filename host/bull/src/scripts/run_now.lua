-- runNow. ARGV (built by `RunNow` in calls.rs): [1] prefix, [2] job id, [3] the time, in
-- ms, [4] a token for the event channel.
-- Makes a delayed or failed job ready to run at once, as Bull's `job.promote()` and
-- `job.retry()` do, for `POST /jobs/:id/process`: a delayed job leaves `delayed` with its
-- delay cleared; a failed one leaves `failed` with its finish and failure fields cleared
-- (its attempts made are kept). Either goes to wait (or paused) with its priority, and a
-- `waiting` event is published. Replies 1 for a delayed job, 2 for a failed one, 0 when
-- the job does not exist, -1 when it is locked (running), -2 when it is in neither set.
local p = ARGV[1]
local id = ARGV[2]
local jobKey = p .. id
if rcall("EXISTS", jobKey) == 0 then
  return 0
end
if rcall("EXISTS", jobKey .. ":lock") == 1 then
  return -1
end
local reply
if rcall("ZREM", p .. "delayed", id) == 1 then
  rcall("HSET", jobKey, "delay", 0)
  reply = 1
elseif rcall("ZREM", p .. "failed", id) == 1 then
  rcall("HDEL", jobKey, "finishedOn", "processedOn", "failedReason")
  rcall("HSET", jobKey, "retriedOn", ARGV[3])
  reply = 2
else
  return -2
end
local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
local target = enqueue(p, id, priority, false)
rcall("PUBLISH", p .. "waiting@" .. ARGV[4], id)
return reply
