-- Plugin $1's keys for the identities in $2, about to be replaced by a resolution batch's.
DELETE FROM identity_index
 WHERE plugin_id = $1 AND identity_id = ANY($2::text[])
