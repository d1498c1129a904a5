-- The job recorded for a stored delivery (NULL while it is not queued).
SELECT job_id FROM webhook_deliveries WHERE plugin_id = ?1 AND delivery_id = ?2
