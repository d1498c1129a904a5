-- Observed accounts (?1, a JSON array of row objects with a fresh id each; ?2 now). A
-- re-observation fills in what it knows, merges metadata key by key and refreshes
-- last_verified_at.
INSERT INTO identities (id, platform, platform_user_id, platform_username, display_name,
                        profile_url, avatar_url, discovered_at, last_verified_at, metadata,
                        created_at, updated_at)
SELECT value ->> 'id', value ->> 'platform', value ->> 'platform_user_id',
       value ->> 'platform_username', value ->> 'display_name', value ->> 'profile_url',
       value ->> 'avatar_url', ?2, ?2, value ->> 'metadata', ?2, ?2
  FROM json_each(?1)
 WHERE true
    ON CONFLICT (platform, platform_user_id) DO UPDATE SET
       platform_username = coalesce(excluded.platform_username, identities.platform_username),
       display_name = coalesce(excluded.display_name, identities.display_name),
       profile_url = coalesce(excluded.profile_url, identities.profile_url),
       avatar_url = coalesce(excluded.avatar_url, identities.avatar_url),
       metadata = json_patch(identities.metadata, excluded.metadata),
       last_verified_at = excluded.last_verified_at,
       updated_at = excluded.updated_at
