-- Keyword matches; an existing (event_id, keyword_id) is left untouched.
INSERT INTO keyword_matches (event_id, keyword_id, matched_text, position, occurrences,
                             plugin_id)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[],
                     $6::text[])
    ON CONFLICT DO NOTHING
