-- Installed plugin ?1 runs component ?10 (?2..?8 from its manifest) from now on; config
-- ?9 replaces the old one when given (NULL keeps it); ?11 is now.
UPDATE plugins
   SET name = ?2, version = ?3, description = ?4, author_name = ?5, author_email = ?6,
       author_url = ?7, manifest = ?8, config = COALESCE(?9, config),
       component_sha256 = ?10, updated_at = ?11
 WHERE id = ?1 AND is_installed
