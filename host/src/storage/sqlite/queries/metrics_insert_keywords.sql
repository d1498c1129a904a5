-- Per day (of the matched event) and keyword: mentions (occurrences) and the events
-- mentioning it, for events that occurred in [?1, ?2).
-- ?3: the day offset as a SQLite date modifier (`+3600 seconds`); ?4: now.
INSERT INTO metrics_daily_keywords (day, keyword_id, match_count, event_count, computed_at)
SELECT date(e.occurred_at, ?3),
       m.keyword_id,
       sum(m.occurrences),
       count(DISTINCT m.event_id),
       ?4
  FROM keyword_matches m
  JOIN events e ON e.id = m.event_id
 WHERE e.occurred_at >= ?1 AND e.occurred_at < ?2
 GROUP BY 1, 2
