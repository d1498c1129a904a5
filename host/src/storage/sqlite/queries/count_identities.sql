-- How many of the accounts in ?1 (a JSON array of row objects) already have a row: the
-- single writer makes this exact for the upsert that follows in the same transaction.
SELECT count(*) FROM identities
 WHERE (platform, platform_user_id) IN
       (SELECT value ->> 'platform', value ->> 'platform_user_id' FROM json_each(?1))
