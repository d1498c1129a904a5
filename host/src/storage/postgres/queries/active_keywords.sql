-- The active keywords, most important first; synonyms as a JSON array, as SQLite keeps them.
SELECT id, term, category, match_strategy, regex_pattern, to_jsonb(synonyms) AS synonyms
  FROM keywords
 WHERE is_active
 ORDER BY priority DESC, term, id
