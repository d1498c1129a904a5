-- Removes installed plugin $1: not installed, not enabled; the row stays.
UPDATE plugins
   SET is_installed = false, is_enabled = false,
       disabled_at = CASE WHEN is_enabled THEN now() ELSE disabled_at END,
       updated_at = now()
 WHERE id = $1 AND is_installed
