-- The health check: the cheapest statement that needs the database file open.
SELECT 1
