-- The identity-resolution index added by ../../migrations/0004_identity_index.sql: per
-- plugin, the lookup keys each identity was indexed under (same table and columns; text
-- compares byte-wise in SQLite, as the "C" collation does there).

CREATE TABLE IF NOT EXISTS identity_index (
    plugin_id   TEXT NOT NULL,
    index_key   TEXT NOT NULL,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    PRIMARY KEY (plugin_id, index_key, identity_id)
) WITHOUT ROWID;
-- Replacing an identity's keys deletes by (plugin, identity).
CREATE INDEX IF NOT EXISTS identity_index_identity_idx ON identity_index (plugin_id, identity_id);

-- Batches of identities in (created_at, id) order, and a key's candidates oldest first.
CREATE INDEX IF NOT EXISTS identities_created_at_id_idx ON identities (created_at, id);
