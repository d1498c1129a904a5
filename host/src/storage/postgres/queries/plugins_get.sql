-- One `plugins` row.
SELECT id, name, version, description, author_name, author_email, author_url,
       manifest::text AS manifest, config::text AS config, is_enabled, is_installed,
       installed_at, enabled_at, disabled_at, last_error, last_error_at, updated_at,
       component_sha256
  FROM plugins
 WHERE id = $1
