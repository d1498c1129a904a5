-- Give back a job that could not start here. ARGV (built by `Postpone` in calls.rs):
-- [1] prefix, [2] jobId, [3] lock token, [4] delayed score, [5] runAt ms.
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
