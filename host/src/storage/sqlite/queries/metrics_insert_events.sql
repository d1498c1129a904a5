-- Per day, source and event type: events that occurred in [?1, ?2) and their distinct
-- actor accounts.
-- ?3: the day offset as a SQLite date modifier (`+3600 seconds`); ?4: now.
INSERT INTO metrics_daily_events (day, source, event_type, event_count, actor_count, computed_at)
SELECT date(e.occurred_at, ?3),
       e.source,
       e.event_type,
       count(*),
       -- NULL (no actor) when either part is missing: not counted.
       count(DISTINCT e.actor_platform || char(31) || e.actor_platform_user_id),
       ?4
  FROM events e
 WHERE e.occurred_at >= ?1 AND e.occurred_at < ?2
 GROUP BY 1, 2, 3
