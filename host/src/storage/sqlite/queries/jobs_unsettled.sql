-- Rows left running or pending, last changed before ?1, that a worker started; oldest
-- first, at most ?2. Timestamps here are RFC 3339 text: compare them as times, not as
-- strings.
SELECT id FROM jobs
 WHERE status IN ('running', 'pending') AND started_at IS NOT NULL
   AND julianday(COALESCE(retry_last_at, started_at)) < julianday(?1)
 ORDER BY julianday(COALESCE(retry_last_at, started_at))
 LIMIT ?2
