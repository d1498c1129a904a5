-- One stored delivery, for the job that hands it to its plugin.
SELECT event, headers, body, received_at, job_id
  FROM webhook_deliveries
 WHERE plugin_id = $1 AND delivery_id = $2
