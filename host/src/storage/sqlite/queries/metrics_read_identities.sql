-- The metrics_daily_identities rows of the days ?1 to ?2 (inclusive), by key.
SELECT day, platform, new_identities
  FROM metrics_daily_identities WHERE day BETWEEN ?1 AND ?2 ORDER BY day, platform
