-- A running or pending row whose job the queue no longer has: failed, with ?2 code and
-- ?3 message, at ?4.
UPDATE jobs SET status = 'failed', error_code = ?2, error_message = ?3, completed_at = ?4
 WHERE id = ?1 AND status IN ('running', 'pending')
