-- getJobCounts. ARGV (built by `GetJobCounts` in calls.rs): [1] prefix.
local p = ARGV[1]
return {rcall("LLEN", p .. "wait"), rcall("LLEN", p .. "active"), rcall("LLEN", p .. "paused"),
  rcall("ZCARD", p .. "completed"), rcall("ZCARD", p .. "failed"), rcall("ZCARD", p .. "delayed")}
