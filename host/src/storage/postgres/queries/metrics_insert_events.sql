-- Per day, source and event type: events that occurred in [$1, $2) and their distinct
-- actor accounts. $3: seconds east of UTC at which days start.
INSERT INTO metrics_daily_events (day, source, event_type, event_count, actor_count, computed_at)
SELECT ((e.occurred_at AT TIME ZONE 'UTC') + $3::integer * interval '1 second')::date,
       e.source,
       e.event_type,
       count(*),
       -- NULL (no actor) when either part is missing: not counted.
       count(DISTINCT e.actor_platform || chr(31) || e.actor_platform_user_id),
       now()
  FROM events e
 WHERE e.occurred_at >= $1 AND e.occurred_at < $2
 GROUP BY 1, 2, 3
