SELECT value FROM plugin_kv WHERE namespace = ?1 AND key = ?2
