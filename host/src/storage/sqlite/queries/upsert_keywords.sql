-- Keywords by id (?1, a JSON array of row objects, synonyms as JSON text; ?2 now).
INSERT INTO keywords (id, term, category, match_strategy, regex_pattern, synonyms,
                      created_at, updated_at)
SELECT value ->> 'id', value ->> 'term', value ->> 'category', value ->> 'match_strategy',
       value ->> 'regex_pattern', value ->> 'synonyms', ?2, ?2
  FROM json_each(?1)
 WHERE true
    ON CONFLICT (id) DO UPDATE SET
       term = excluded.term,
       category = excluded.category,
       match_strategy = excluded.match_strategy,
       regex_pattern = excluded.regex_pattern,
       synonyms = excluded.synonyms,
       updated_at = excluded.updated_at
