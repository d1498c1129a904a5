-- moveToFinished (completed, or failed for good). ARGV (built by `MoveToFinished` in
-- calls.rs): [1] prefix, [2] jobId, [3] lock token, [4] target set, [5] field
-- (returnvalue/failedReason), [6] value, [7] now, [8] keepCount, [9] keepAge ("" = none),
-- [10] event JSON, [11] attemptsMade ("" = leave), [12] stacktrace JSON, [13] fetchNext
-- ("1"/"0"), [14] lockDuration ms, [15] lock token for the next job, [16] limiter max,
-- [17] limiter window ms.
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
