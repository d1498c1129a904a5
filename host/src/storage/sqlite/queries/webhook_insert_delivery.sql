-- A verified delivery, stored once: a delivery id the plugin already has is left as it
-- is, and then no row comes back (the caller reads the stored row's job instead).
INSERT INTO webhook_deliveries (plugin_id, delivery_id, event, headers, body, received_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (plugin_id, delivery_id) DO NOTHING
RETURNING job_id
