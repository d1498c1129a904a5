-- moveStalledJobsToWait. ARGV (built by `MoveStalledJobsToWait` in calls.rs): [1] prefix,
-- [2] now, [3] stalledInterval ms, [4] maxStalledCount, [5] token.
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
