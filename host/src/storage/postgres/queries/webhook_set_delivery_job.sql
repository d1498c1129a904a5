-- Records the job queued for a stored delivery.
UPDATE webhook_deliveries SET job_id = $3 WHERE plugin_id = $1 AND delivery_id = $2
