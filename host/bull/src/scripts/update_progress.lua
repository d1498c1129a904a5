-- updateProgress. ARGV (built by `UpdateProgress` in calls.rs): [1] prefix, [2] jobId,
-- [3] progress JSON, [4] event JSON.
local jobKey = ARGV[1] .. ARGV[2]
if rcall("EXISTS", jobKey) == 1 then
  rcall("HSET", jobKey, "progress", ARGV[3])
  rcall("PUBLISH", ARGV[1] .. "progress", ARGV[4])
  return 0
end
return -1
