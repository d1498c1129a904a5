-- Keyword matches (?1, a JSON array of row objects; ?2 now); an existing
-- (event_id, keyword_id) is left untouched.
INSERT INTO keyword_matches (event_id, keyword_id, matched_text, position, occurrences,
                             plugin_id, created_at)
SELECT value ->> 'event_id', value ->> 'keyword_id', value ->> 'matched_text',
       value ->> 'position', value ->> 'occurrences', value ->> 'plugin_id', ?2
  FROM json_each(?1)
 WHERE true
    ON CONFLICT DO NOTHING
