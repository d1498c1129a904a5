-- Keywords by id, one text array per column ($6 synonyms as JSON arrays, since lists of
-- different lengths fit no 2-D array). Returns, per row, whether it was inserted.
INSERT INTO keywords (id, term, category, match_strategy, regex_pattern, synonyms)
SELECT id, term, category, ms, rp, ARRAY(SELECT jsonb_array_elements_text(s::jsonb))
  FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       AS t(id, term, category, ms, rp, s)
    ON CONFLICT (id) DO UPDATE SET
       term = EXCLUDED.term,
       category = EXCLUDED.category,
       match_strategy = EXCLUDED.match_strategy,
       regex_pattern = EXCLUDED.regex_pattern,
       synonyms = EXCLUDED.synonyms,
       updated_at = now()
RETURNING (xmax = 0)
