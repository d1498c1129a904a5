-- The health check: the cheapest statement the server must answer.
SELECT 1
