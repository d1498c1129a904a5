-- Links a plugin proposed, as ordered pairs (?1, a JSON array of row objects with a
-- fresh id each; ?2 now), written only for a pair with no link row at all: an active
-- link is kept as it is, and a link a person removed (only inactive rows) is never
-- brought back. ON CONFLICT skips a pair named twice in one batch.
INSERT INTO identity_links (id, identity_id_1, identity_id_2, confidence, link_source,
                            confidence_score, reason, plugin_id, is_active, created_at)
SELECT value ->> 'id', value ->> 'identity_id_1', value ->> 'identity_id_2',
       value ->> 'confidence', value ->> 'link_source', value ->> 'confidence_score',
       value ->> 'reason', value ->> 'plugin_id', 1, ?2
  FROM json_each(?1)
 WHERE NOT EXISTS (SELECT 1 FROM identity_links l
                    WHERE l.identity_id_1 = value ->> 'identity_id_1'
                      AND l.identity_id_2 = value ->> 'identity_id_2')
    ON CONFLICT DO NOTHING
