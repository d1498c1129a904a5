-- Graceful-shutdown release. ARGV (built by `Release` in calls.rs): [1] prefix, [2] jobId,
-- [3] lock token.
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
