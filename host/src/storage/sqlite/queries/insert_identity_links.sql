-- Suggested links as ordered pairs (?1, a JSON array of row objects with a fresh id
-- each; ?2 now); a pair that already has an active link keeps it.
INSERT INTO identity_links (id, identity_id_1, identity_id_2, confidence, link_source,
                            confidence_score, reason, plugin_id, is_active, created_at)
SELECT value ->> 'id', value ->> 'identity_id_1', value ->> 'identity_id_2',
       value ->> 'confidence', value ->> 'link_source', value ->> 'confidence_score',
       value ->> 'reason', value ->> 'plugin_id', 1, ?2
  FROM json_each(?1)
 WHERE true
    ON CONFLICT DO NOTHING
