-- removeRepeatable. ARGV (built by `RemoveRepeatable` in calls.rs): [1] prefix, [2] the
-- stem of the schedule's run ids (`repeat:<md5>:`), [3] the repeat key.
-- As Bull's removeRepeatable.lua: the pending (delayed) run goes with the schedule, so a
-- removed schedule fires no more; a run already waiting or active is left alone. Replies 1
-- when the schedule was registered.
local p = ARGV[1]
local millis = rcall("ZSCORE", p .. "repeat", ARGV[3])
if millis then
  local id = ARGV[2] .. millis
  if rcall("ZREM", p .. "delayed", id) == 1 then
    rcall("DEL", p .. id)
  end
end
return rcall("ZREM", p .. "repeat", ARGV[3])
