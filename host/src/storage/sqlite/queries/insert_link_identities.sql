-- Accounts seen only through a link (?1, a JSON array of row objects with a fresh id
-- each; ?2 now) still get an identity row, so the link can reference it; a later
-- observation fills in the names.
INSERT INTO identities (id, platform, platform_user_id, discovered_at, created_at, updated_at)
SELECT value ->> 'id', value ->> 'platform', value ->> 'platform_user_id', ?2, ?2, ?2
  FROM json_each(?1)
 WHERE true
    ON CONFLICT DO NOTHING
