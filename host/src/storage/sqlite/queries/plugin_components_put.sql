-- Stores component ?2 (?3 bytes) under its SHA-256 ?1 at ?4 (now); the same content twice
-- is one row.
INSERT INTO plugin_components (sha256, bytes, size, created_at)
VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (sha256) DO NOTHING
