-- Global pause/resume. ARGV (built by `Pause` in calls.rs): [1] prefix, [2] "paused" or
-- "resumed".
local prefix = ARGV[1]
local src, dst = prefix .. "wait", prefix .. "paused"
if ARGV[2] ~= "paused" then
  src, dst = dst, src
end
if rcall("EXISTS", src) == 1 then
  rcall("RENAME", src, dst)
end
if ARGV[2] == "paused" then
  rcall("SET", prefix .. "meta-paused", 1)
  rcall("HSET", prefix .. "meta", "paused", 1)
else
  rcall("DEL", prefix .. "meta-paused")
  rcall("HDEL", prefix .. "meta", "paused")
end
rcall("PUBLISH", prefix .. ARGV[2], ARGV[2])
return 0
