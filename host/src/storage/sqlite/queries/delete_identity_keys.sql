-- Plugin ?1's keys for the identities in ?2 (a JSON array of ids), about to be replaced
-- by a resolution batch's.
DELETE FROM identity_index
 WHERE plugin_id = ?1 AND identity_id IN (SELECT value FROM json_each(?2))
