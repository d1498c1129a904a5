-- Keys from ?2 (the prefix) up to, not including, ?3 (the smallest string above every
-- key with that prefix): a range scan of the primary key. At most ?4.
SELECT key FROM plugin_kv
 WHERE namespace = ?1 AND key >= ?2 AND key < ?3
 ORDER BY key
 LIMIT ?4
