-- Which of the identity ids in ?1 (a JSON array) exist.
SELECT id FROM identities WHERE id IN (SELECT value FROM json_each(?1))
