-- The per-connection staging table of InsertMode::Copy, emptied at each commit.
CREATE TEMP TABLE IF NOT EXISTS events_stage (
    id text, source text, external_id text, event_type text, occurred_at timestamptz,
    raw_payload jsonb, storage_key text, text text, ap text, au text, plugin_id text,
    plugin_version text, correlation_id text
) ON COMMIT DELETE ROWS
