-- Up to $3 identities after the position ($1 created_at, $2 id) in (created_at, id)
-- order: the batches identity resolution reads. From the start, $1 is NULL and $2 ''
-- (every created_at is after -infinity). `id` compares in byte order ("C"), as in SQLite,
-- and as identities_created_at_id_idx stores it, so both the bound and the order are
-- served by that index.
SELECT id, platform, platform_user_id, platform_username, display_name, profile_url,
       avatar_url, metadata, created_at
  FROM identities
 WHERE (created_at, id COLLATE "C") > (coalesce($1, '-infinity'::timestamptz), $2)
 ORDER BY created_at, id COLLATE "C"
 LIMIT $3
