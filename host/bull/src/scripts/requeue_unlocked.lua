-- Undo a blocking pop that raced with shutdown. ARGV (built by `RequeueUnlocked` in
-- calls.rs): [1] prefix, [2] jobId, [3] token (the process token, for the event name).
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
