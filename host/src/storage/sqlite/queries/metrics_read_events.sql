-- The metrics_daily_events rows of the days ?1 to ?2 (inclusive), by key.
SELECT day, source, event_type, event_count, actor_count
  FROM metrics_daily_events WHERE day BETWEEN ?1 AND ?2 ORDER BY day, source, event_type
