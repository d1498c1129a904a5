-- The rollup rows of the days ?1 to ?2 (inclusive, YYYY-MM-DD), before they are recomputed.
DELETE FROM metrics_daily_identities WHERE day BETWEEN ?1 AND ?2
