-- Installs ?1 with the component ?11 (?2..?8 from its manifest), config ?9, enabled ?10,
-- at ?12 (now, in the stored text form). An installed row is left alone (no row
-- returned: the id is taken); a removed one is taken over.
INSERT INTO plugins (id, name, version, description, author_name, author_email, author_url,
                     manifest, config, is_enabled, is_installed, installed_at, enabled_at,
                     disabled_at, last_error, last_error_at, component_sha256, created_at,
                     updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?12,
        CASE WHEN ?10 THEN ?12 END, CASE WHEN NOT ?10 THEN ?12 END, NULL, NULL, ?11, ?12, ?12)
    ON CONFLICT (id) DO UPDATE SET
       name = excluded.name, version = excluded.version, description = excluded.description,
       author_name = excluded.author_name, author_email = excluded.author_email,
       author_url = excluded.author_url, manifest = excluded.manifest,
       config = excluded.config, is_enabled = excluded.is_enabled, is_installed = 1,
       installed_at = excluded.installed_at, enabled_at = excluded.enabled_at,
       disabled_at = excluded.disabled_at, last_error = NULL, last_error_at = NULL,
       component_sha256 = excluded.component_sha256, updated_at = excluded.updated_at
     WHERE NOT plugins.is_installed
RETURNING id
