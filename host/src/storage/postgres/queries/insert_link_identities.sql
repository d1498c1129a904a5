-- Accounts seen only through a link get an identity row so the link can reference it;
-- a later observation fills in the names.
INSERT INTO identities (platform, platform_user_id)
SELECT * FROM UNNEST($1::text[], $2::text[])
    ON CONFLICT DO NOTHING
