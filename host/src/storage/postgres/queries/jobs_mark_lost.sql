-- A running or pending row whose job the queue no longer has: failed, with $2 code and
-- $3 message.
UPDATE jobs SET status = 'failed', error_code = $2, error_message = $3, completed_at = now()
 WHERE id = $1 AND status IN ('running', 'pending')
