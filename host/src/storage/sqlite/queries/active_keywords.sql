-- The active keywords, most important first; synonyms are stored as a JSON array.
SELECT id, term, category, match_strategy, regex_pattern, synonyms
  FROM keywords
 WHERE is_active = 1
 ORDER BY priority DESC, term, id
