-- Up to ?3 identities after the position (?1 created_at in the stored text form, ?2 id)
-- in (created_at, id) order: the batches identity resolution reads. From the start, ?1
-- and ?2 are '' (before every stored timestamp). identities_created_at_id_idx serves
-- both the bound and the order.
SELECT id, platform, platform_user_id, platform_username, display_name, profile_url,
       avatar_url, metadata, created_at
  FROM identities
 WHERE (created_at, id) > (?1, ?2)
 ORDER BY created_at, id
 LIMIT ?3
