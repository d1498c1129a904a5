-- addJob. ARGV (built by `AddJob` in calls.rs): [1] prefix, [2] customId ("" = next
-- counter value), [3] name, [4] data, [5] opts JSON, [6] timestamp, [7] delay, [8] runAt
-- (0 = not delayed), [9] priority, [10] lifo ("1"/"0"), [11] token, [12] repeatKey
-- ("" = none), [13] repeatMillis, [14] checkRepeatExists ("1"/"0").
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
