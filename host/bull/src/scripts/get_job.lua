-- A job's hash and its state. ARGV (built by `GetJob` in calls.rs): [1] prefix, [2] jobId.
local p = ARGV[1]
local id = ARGV[2]
local fields = rcall("HGETALL", p .. id)
local state = "unknown"
if rcall("ZSCORE", p .. "completed", id) then state = "completed"
elseif rcall("ZSCORE", p .. "failed", id) then state = "failed"
elseif rcall("ZSCORE", p .. "delayed", id) then state = "delayed"
elseif rcall("LPOS", p .. "active", id) then state = "active"
elseif rcall("LPOS", p .. "wait", id) then state = "waiting"
elseif rcall("LPOS", p .. "paused", id) then state = "paused"
end
return {state, fields}
