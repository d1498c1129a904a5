-- Webhook deliveries as received, as ../../migrations/0005_webhook_deliveries.sql
-- (same table and columns; headers are JSON text, the body a BLOB, timestamps TEXT as in
-- 0001).

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    plugin_id   TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event       TEXT,
    headers     TEXT NOT NULL,
    body        BLOB NOT NULL,
    received_at TEXT NOT NULL,
    job_id      TEXT,
    PRIMARY KEY (plugin_id, delivery_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_received_at_idx ON webhook_deliveries (received_at);
