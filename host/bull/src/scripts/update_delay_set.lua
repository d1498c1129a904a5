-- updateDelaySet (the delayed-job promoter). ARGV (built by `UpdateDelaySet` in calls.rs):
-- [1] prefix, [2] max score (now*4096+4095), [3] token.
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
