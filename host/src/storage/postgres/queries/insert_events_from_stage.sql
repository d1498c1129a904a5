-- The staged batch into events; an event already stored is left untouched.
INSERT INTO events (id, source, external_id, event_type, occurred_at, raw_payload,
                    storage_key, text, actor_platform, actor_platform_user_id, plugin_id,
                    plugin_version, correlation_id)
SELECT * FROM events_stage
    ON CONFLICT DO NOTHING
