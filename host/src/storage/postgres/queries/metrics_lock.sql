-- Serialises daily-metrics recomputations (held until the transaction ends): two jobs
-- replacing overlapping ranges at once would otherwise both delete, then both insert
-- the same keys.
SELECT pg_advisory_xact_lock(hashtext('drowl-host analytics daily-metrics'))
