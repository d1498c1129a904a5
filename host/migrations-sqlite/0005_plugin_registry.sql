-- The plugin registry added by ../../migrations/0006_plugin_registry.sql: the component
-- a `plugins` row runs, and installed components by content (same tables and columns).

ALTER TABLE plugins ADD COLUMN component_sha256 TEXT;

CREATE TABLE IF NOT EXISTS plugin_components (
    sha256     TEXT PRIMARY KEY,
    bytes      BLOB NOT NULL,
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
