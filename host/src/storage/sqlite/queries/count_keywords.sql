-- How many of the keywords in ?1 (a JSON array of row objects) already exist.
SELECT count(*) FROM keywords WHERE id IN (SELECT value ->> 'id' FROM json_each(?1))
