-- A batch of job state changes, at most one per job, one array per column (JSON columns
-- as text). The conflict rule, the same in SQLite:
--
-- A late `running` or `pending` must not overwrite a final state, with one exception: a
-- worker taking a finished job again (`running` over a final row: the job retried through
-- the API, or its id reused by a new job) is a new run and is written. A move is written
-- only after Redis accepted it under the job's lock, so such a `running` write cannot be
-- a stale one from an attempt that had already finished.
--
-- A job enqueued after the row's job started cannot be that job: it is a new job reusing
-- the id (Bull's id counter starts again when Redis loses its data), so it replaces the
-- row's enqueue time and attempt history. Name, type and input always follow the queue.
-- (CASE rather than GREATEST, as in SQLite.)
INSERT INTO jobs (id, type, name, status, priority, input, output, error_message,
                  error_code, error_details, started_at, completed_at, timeout_ms,
                  retry_attempt, retry_max_attempts, retry_backoff_strategy, retry_last_at,
                  plugin_id, created_at)
SELECT id, type, name, status, priority, input::jsonb, output::jsonb, error_message,
       error_code, error_details::jsonb, started_at, completed_at, timeout_ms,
       retry_attempt, retry_max_attempts, retry_backoff_strategy, retry_last_at,
       plugin_id, created_at
  FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[],
              $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
              $12::timestamptz[], $13::int4[], $14::int4[], $15::int4[], $16::text[],
              $17::timestamptz[], $18::text[], $19::timestamptz[])
       AS t(id, type, name, status, priority, input, output, error_message, error_code,
            error_details, started_at, completed_at, timeout_ms, retry_attempt,
            retry_max_attempts, retry_backoff_strategy, retry_last_at, plugin_id,
            created_at)
    ON CONFLICT (id) DO UPDATE SET
       type = excluded.type,
       name = excluded.name,
       input = excluded.input,
       created_at = CASE WHEN excluded.created_at > jobs.started_at
                         THEN excluded.created_at ELSE jobs.created_at END,
       status = excluded.status,
       output = CASE WHEN excluded.status IN ('running', 'pending') THEN NULL
                     ELSE COALESCE(excluded.output, jobs.output) END,
       error_message = excluded.error_message,
       error_code = excluded.error_code,
       error_details = excluded.error_details,
       started_at = COALESCE(excluded.started_at, jobs.started_at),
       completed_at = excluded.completed_at,
       retry_attempt = CASE WHEN jobs.status IN ('completed', 'failed', 'timeout')
                              OR excluded.created_at > jobs.started_at
                              OR excluded.retry_attempt > jobs.retry_attempt
                            THEN excluded.retry_attempt ELSE jobs.retry_attempt END,
       retry_max_attempts = excluded.retry_max_attempts,
       retry_last_at = CASE WHEN jobs.status IN ('completed', 'failed', 'timeout')
                              OR excluded.created_at > jobs.started_at
                            THEN excluded.retry_last_at
                            ELSE COALESCE(excluded.retry_last_at, jobs.retry_last_at) END,
       plugin_id = COALESCE(excluded.plugin_id, jobs.plugin_id)
 WHERE jobs.status NOT IN ('completed', 'failed', 'timeout')
    OR excluded.status IN ('completed', 'failed', 'timeout', 'running')
