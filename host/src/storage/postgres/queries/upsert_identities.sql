-- Observed accounts, one text array per column ($7 metadata as JSON text). A
-- re-observation fills in what it knows, merges metadata key by key and refreshes
-- last_verified_at. Returns, per row, whether it was inserted (xmax = 0) or updated.
INSERT INTO identities (platform, platform_user_id, platform_username, display_name,
                        profile_url, avatar_url, metadata, last_verified_at)
SELECT p, u, n, d, pr, av, m::jsonb, now()
  FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
              $7::text[]) AS t(p, u, n, d, pr, av, m)
    ON CONFLICT (platform, platform_user_id) DO UPDATE SET
       platform_username = coalesce(EXCLUDED.platform_username, identities.platform_username),
       display_name = coalesce(EXCLUDED.display_name, identities.display_name),
       profile_url = coalesce(EXCLUDED.profile_url, identities.profile_url),
       avatar_url = coalesce(EXCLUDED.avatar_url, identities.avatar_url),
       metadata = identities.metadata || EXCLUDED.metadata,
       last_verified_at = now(),
       updated_at = now()
RETURNING (xmax = 0)
