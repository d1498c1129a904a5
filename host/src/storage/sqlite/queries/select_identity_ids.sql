-- The ids of the accounts in ?1 (a JSON array of row objects).
SELECT id, platform, platform_user_id FROM identities
 WHERE (platform, platform_user_id) IN
       (SELECT value ->> 'platform', value ->> 'platform_user_id' FROM json_each(?1))
