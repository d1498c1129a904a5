-- Webhook deliveries as received (`POST /webhooks/<plugin id>`), stored once their
-- signature is verified and before they are acknowledged: a delivery is acknowledged
-- with 202 only when it is durable, and a queued job turns it into events later.
-- (plugin_id, delivery_id) is the platform's own id for one delivery within a plugin:
-- a redelivery of the same id is stored (and handled) once.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    plugin_id   text NOT NULL,
    delivery_id text NOT NULL,
    -- The value of the header the plugin's spec names for the kind of delivery.
    event       text,
    -- Every header of the request, names lowercased, in order: [[name, value], ...].
    headers     jsonb NOT NULL,
    -- The body exactly as received: the signature was computed over these bytes.
    body        bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    -- The Bull job handling it, set once it is queued (NULL: stored but not yet queued,
    -- so a redelivery queues it).
    job_id      text,
    PRIMARY KEY (plugin_id, delivery_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_received_at_idx ON webhook_deliveries (received_at);
