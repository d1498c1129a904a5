-- A batch of events, one array per column ($5 timestamptz, the rest text); an event whose
-- (source, external_id) is already stored is left untouched.
INSERT INTO events (id, source, external_id, event_type, occurred_at, raw_payload,
                    storage_key, text, actor_platform, actor_platform_user_id, plugin_id,
                    plugin_version, correlation_id)
SELECT id, source, external_id, event_type, occurred_at, raw_payload::jsonb,
       storage_key, text, ap, au, plugin_id, plugin_version, correlation_id
  FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
              $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
              $12::text[], $13::text[])
       AS t(id, source, external_id, event_type, occurred_at, raw_payload, storage_key,
            text, ap, au, plugin_id, plugin_version, correlation_id)
    ON CONFLICT DO NOTHING
