-- How loading plugin ?1 went: error ?2, or NULL once it loads, at ?3 (now). Written only
-- on a change.
UPDATE plugins
   SET last_error = ?2,
       last_error_at = CASE WHEN ?2 IS NULL THEN NULL ELSE ?3 END
 WHERE id = ?1 AND last_error IS NOT ?2
