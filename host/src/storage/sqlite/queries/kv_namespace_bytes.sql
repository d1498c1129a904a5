-- Bytes stored in namespace ?1: keys and values, as the per-plugin quota counts them
-- (the key cast to a blob so `length` counts bytes, not characters).
SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0)
  FROM plugin_kv
 WHERE namespace = ?1
