-- How loading plugin $1 went: error $2, or NULL once it loads. Written only on a change.
UPDATE plugins
   SET last_error = $2::text,
       last_error_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END
 WHERE id = $1 AND last_error IS DISTINCT FROM $2::text
