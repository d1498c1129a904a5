-- Removes installed plugin ?1 at ?2 (now): not installed, not enabled; the row stays.
UPDATE plugins
   SET is_installed = 0, is_enabled = 0,
       disabled_at = CASE WHEN is_enabled THEN ?2 ELSE disabled_at END,
       updated_at = ?2
 WHERE id = ?1 AND is_installed
