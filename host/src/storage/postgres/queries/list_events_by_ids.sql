-- The events with the ids in $1, after $2 in id order ('' for the first page), at most $3.
SELECT id, source, external_id, event_type, occurred_at, raw_payload, storage_key, text,
       actor_platform, actor_platform_user_id, plugin_id
  FROM events
 WHERE id = ANY($1::text[])
   AND id > $2
 ORDER BY id
 LIMIT $3
