-- Keys from $2 on, for a prefix no string bounds from above (the empty prefix). At most $3.
SELECT key FROM plugin_kv
 WHERE namespace = $1 AND key >= $2
 ORDER BY key
 LIMIT $3
