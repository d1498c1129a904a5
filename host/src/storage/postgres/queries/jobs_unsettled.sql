-- Rows left running or pending, last changed before $1, that a worker started; oldest
-- first, at most $2.
SELECT id FROM jobs
 WHERE status IN ('running', 'pending') AND started_at IS NOT NULL
   AND COALESCE(retry_last_at, started_at) < $1
 ORDER BY COALESCE(retry_last_at, started_at)
 LIMIT $2
