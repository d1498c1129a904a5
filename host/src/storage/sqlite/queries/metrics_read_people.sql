-- The metrics_daily_people rows of the days ?1 to ?2 (inclusive), by day.
SELECT day, active_people, active_accounts
  FROM metrics_daily_people WHERE day BETWEEN ?1 AND ?2 ORDER BY day
