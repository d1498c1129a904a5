-- The `plugins` table as the host's plugin registry (issue 13). drowl's columns keep
-- their names and meaning (`is_installed`, `is_enabled`, `config`, `manifest`,
-- `last_error`, ...): `drowl-host plugin install` writes them, drowl's API may change
-- them, and every `serve` reads them. The host adds what it needs to run a row.

-- The SHA-256 (hex) of the component installed for the row, in `plugin_components`.
-- NULL for a row drowl's API wrote without one: its component is then the file of the
-- same id in the daemon's plugins directory.
ALTER TABLE plugins ADD COLUMN IF NOT EXISTS component_sha256 text;

-- Installed components by content. In the database rather than only on the disk of the
-- machine that ran `plugin install`, so every daemon on this database can load what is
-- installed (each keeps a copy in its data directory's plugin store); addressed by
-- content, so an upgrade never overwrites the build that jobs started earlier still run.
CREATE TABLE IF NOT EXISTS plugin_components (
    sha256     text PRIMARY KEY,
    bytes      bytea NOT NULL,
    size       bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
