INSERT INTO plugin_kv (namespace, key, value)
VALUES ($1, $2, $3)
    ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
