-- Enables ($2 true) or disables installed plugin $1; the timestamp of the change is
-- stamped only when it changes something.
UPDATE plugins
   SET is_enabled = $2,
       enabled_at = CASE WHEN $2 AND NOT is_enabled THEN now() ELSE enabled_at END,
       disabled_at = CASE WHEN NOT $2 AND is_enabled THEN now() ELSE disabled_at END,
       updated_at = now()
 WHERE id = $1 AND is_installed
