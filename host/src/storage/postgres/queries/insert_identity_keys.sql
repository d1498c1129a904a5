-- Plugin $1's keys ($2) for identities ($3), one row per (key, identity); a row a
-- concurrent save of the same identity wrote first is kept.
INSERT INTO identity_index (plugin_id, index_key, identity_id)
SELECT $1, k, i FROM UNNEST($2::text[], $3::text[]) AS t(k, i)
    ON CONFLICT DO NOTHING
