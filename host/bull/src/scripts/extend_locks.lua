-- extendLock for many jobs at once. ARGV (built by `ExtendLocks` in calls.rs): [1] prefix,
-- [2] lockDuration ms, then one (jobId, lock token) pair per running attempt.
local prefix = ARGV[1]
local out = {}
for i = 3, #ARGV - 1, 2 do
  local id = ARGV[i]
  local token = ARGV[i + 1]
  local lockKey = prefix .. id .. ":lock"
  if rcall("GET", lockKey) == token then
    rcall("SET", lockKey, token, "PX", ARGV[2])
    rcall("SREM", prefix .. "stalled", id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
