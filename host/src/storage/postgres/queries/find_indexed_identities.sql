-- Up to $3 identities plugin $1 indexed under the key $2, oldest first (another plugin's
-- keys are never read: the primary key is led by plugin_id).
SELECT i.id, i.platform, i.platform_user_id, i.platform_username, i.display_name,
       i.profile_url, i.avatar_url, i.metadata, i.created_at
  FROM identity_index x
  JOIN identities i ON i.id = x.identity_id
 WHERE x.plugin_id = $1 AND x.index_key = $2
 ORDER BY i.created_at, i.id COLLATE "C"
 LIMIT $3
