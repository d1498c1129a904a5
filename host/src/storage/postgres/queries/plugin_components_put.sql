-- Stores component $2 ($3 bytes) under its SHA-256 $1; the same content twice is one row.
INSERT INTO plugin_components (sha256, bytes, size)
VALUES ($1, $2, $3)
    ON CONFLICT (sha256) DO NOTHING
