-- Identity resolution: the lookup keys an identity-resolution plugin indexed each
-- identity under (normalised usernames, e-mails, profile URLs, name keys), so that it can
-- later find the candidates for a new identity by key instead of reading every identity.
-- Each plugin has an index of its own (`plugin_id`, chosen by the host); a batch replaces
-- the keys of its identities, and the keys go with the identity they point at.
-- "C" collation on the keys, as in `plugin_kv`: byte-wise equality and order whatever the
-- database's locale, the same as in SQLite.
CREATE TABLE IF NOT EXISTS identity_index (
    plugin_id   text COLLATE "C" NOT NULL,
    index_key   text COLLATE "C" NOT NULL,
    identity_id text NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    PRIMARY KEY (plugin_id, index_key, identity_id)
);
-- Replacing an identity's keys deletes by (plugin, identity), which the primary key,
-- led by the key, cannot serve.
CREATE INDEX IF NOT EXISTS identity_index_identity_idx ON identity_index (plugin_id, identity_id);

-- Resolution reads identities in batches in (created_at, id) order after a resume point,
-- and lists a key's candidates oldest first: both are index scans with this. `id` in byte
-- order ("C"), as in SQLite, so a resume point means the same thing in both backends.
CREATE INDEX IF NOT EXISTS identities_created_at_id_idx ON identities (created_at, id COLLATE "C");
