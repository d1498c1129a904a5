-- The metrics_daily_keywords rows of the days ?1 to ?2 (inclusive), by key.
SELECT day, keyword_id, match_count, event_count
  FROM metrics_daily_keywords WHERE day BETWEEN ?1 AND ?2 ORDER BY day, keyword_id
