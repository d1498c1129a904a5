-- Installs $1 with the component $11 ($2..$8 from its manifest), config $9, enabled $10.
-- An installed row is left alone (no row returned: the id is taken); a removed one is
-- taken over.
INSERT INTO plugins AS p (id, name, version, description, author_name, author_email,
                          author_url, manifest, config, is_enabled, is_installed,
                          installed_at, enabled_at, disabled_at, last_error, last_error_at,
                          component_sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, true, now(),
        CASE WHEN $10 THEN now() END, CASE WHEN NOT $10 THEN now() END, NULL, NULL, $11)
    ON CONFLICT (id) DO UPDATE SET
       name = EXCLUDED.name, version = EXCLUDED.version, description = EXCLUDED.description,
       author_name = EXCLUDED.author_name, author_email = EXCLUDED.author_email,
       author_url = EXCLUDED.author_url, manifest = EXCLUDED.manifest,
       config = EXCLUDED.config, is_enabled = EXCLUDED.is_enabled, is_installed = true,
       installed_at = now(), enabled_at = EXCLUDED.enabled_at,
       disabled_at = EXCLUDED.disabled_at, last_error = NULL, last_error_at = NULL,
       component_sha256 = EXCLUDED.component_sha256, updated_at = now()
     WHERE NOT p.is_installed
RETURNING id
