-- addLog. ARGV (built by `AddLog` in calls.rs): [1] prefix, [2] jobId, [3] row.
local jobKey = ARGV[1] .. ARGV[2]
if rcall("EXISTS", jobKey) == 1 then
  return rcall("RPUSH", jobKey .. ":logs", ARGV[3])
end
return -1
