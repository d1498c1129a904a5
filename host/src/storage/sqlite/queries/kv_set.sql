-- ?4: now, in the stored text form.
INSERT INTO plugin_kv (namespace, key, value, updated_at)
VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (namespace, key) DO UPDATE SET
       value = excluded.value,
       updated_at = excluded.updated_at
