-- moveToActive. ARGV (built by `MoveToActive` in calls.rs): [1] prefix, [2] jobId
-- ("" = RPOPLPUSH here), [3] lock token, [4] lockDuration ms, [5] now, [6] limiter max
-- (0 = none), [7] limiter window ms.
return takeJob(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
