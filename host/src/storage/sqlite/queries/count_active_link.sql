-- Whether the pair ?1 < ?2 has an active link (0 or 1).
SELECT count(*) FROM identity_links
 WHERE identity_id_1 = ?1 AND identity_id_2 = ?2 AND is_active = 1
