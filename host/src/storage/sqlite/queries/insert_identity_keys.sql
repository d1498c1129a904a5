-- Plugin ?1's keys (?2, a JSON array of row objects: identity_id, index_key).
INSERT INTO identity_index (plugin_id, index_key, identity_id)
SELECT ?1, value ->> 'index_key', value ->> 'identity_id'
  FROM json_each(?2)
 WHERE true
    ON CONFLICT DO NOTHING
