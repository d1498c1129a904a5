-- Which of the identity ids ?1 and ?2 exist.
SELECT id FROM identities WHERE id IN (?1, ?2)
