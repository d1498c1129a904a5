-- Which of the identity ids in $1 exist.
SELECT id FROM identities WHERE id = ANY($1::text[])
