-- Bytes stored in namespace $1: keys and values, as the per-plugin quota counts them.
SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::bigint
  FROM plugin_kv
 WHERE namespace = $1
