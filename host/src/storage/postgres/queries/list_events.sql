-- Events after $5 in id order, at most $6, matching the filters that are not NULL:
-- $1 source, $2 plugin_id, $3 occurred at or after, $4 occurred before, $7 one of these
-- event types, $8 a stored match of this keyword (its id, or its term in any case). $5 is the last
-- id of the previous page, or '' for the first (host ids are never empty).
-- `events.id` is declared COLLATE "C": byte order, as in SQLite, and the primary key
-- serves both the `id >` bound and the ordering.
SELECT id, source, external_id, event_type, occurred_at, raw_payload, storage_key, text,
       actor_platform, actor_platform_user_id, plugin_id
  FROM events
 WHERE id > $5
   AND ($1::text IS NULL OR source = $1)
   AND ($2::text IS NULL OR plugin_id = $2)
   AND ($3::timestamptz IS NULL OR occurred_at >= $3)
   AND ($4::timestamptz IS NULL OR occurred_at < $4)
   AND ($7::text[] IS NULL OR event_type = ANY($7))
   AND ($8::text IS NULL OR EXISTS (
        SELECT 1
          FROM keyword_matches m
          JOIN keywords k ON k.id = m.keyword_id
         WHERE m.event_id = events.id
           AND (k.id = $8 OR lower(k.term) = lower($8))))
 ORDER BY id
 LIMIT $6
