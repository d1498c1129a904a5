-- What drowl-host adds: the facts that make ingestion idempotent and enrichment possible,
-- per-plugin key-value state, keyword matches, and analytics rollups.

-- Events are keyed by the platform's own id, so a retried or duplicated job stores each
-- fact once (`ON CONFLICT DO NOTHING`). The columns are nullable when added to a table
-- drowl's API created earlier; every row the host writes fills them.
ALTER TABLE events ADD COLUMN IF NOT EXISTS external_id text;
ALTER TABLE events ADD COLUMN IF NOT EXISTS text text;
ALTER TABLE events ADD COLUMN IF NOT EXISTS actor_platform text;
ALTER TABLE events ADD COLUMN IF NOT EXISTS actor_platform_user_id text;
CREATE UNIQUE INDEX IF NOT EXISTS events_source_external_id_key ON events (source, external_id);
CREATE INDEX IF NOT EXISTS events_actor_idx ON events (actor_platform, actor_platform_user_id);

-- Plugin and host state; the namespace is chosen by the host, never by plugin code.
-- "C" collation: keys list in byte order and prefix scans use the primary key.
CREATE TABLE IF NOT EXISTS plugin_kv (
    namespace  text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    value      bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, key)
);

CREATE TABLE IF NOT EXISTS keyword_matches (
    event_id     text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    keyword_id   text NOT NULL,
    matched_text text NOT NULL,
    position     bigint NOT NULL,
    occurrences  bigint NOT NULL DEFAULT 1,
    plugin_id    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, keyword_id)
);
CREATE INDEX IF NOT EXISTS keyword_matches_keyword_idx ON keyword_matches (keyword_id, created_at);

-- Analytics rollups: recomputed per day from events and keyword_matches by the
-- `analytics` job (idempotent: a day's rows are replaced, never incremented).
CREATE TABLE IF NOT EXISTS metrics_daily_events (
    day         date NOT NULL,
    source      text NOT NULL,
    event_type  text NOT NULL,
    event_count bigint NOT NULL DEFAULT 0,
    actor_count bigint NOT NULL DEFAULT 0,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, source, event_type)
);

CREATE TABLE IF NOT EXISTS metrics_daily_keywords (
    day         date NOT NULL,
    keyword_id  text NOT NULL,
    match_count bigint NOT NULL DEFAULT 0,
    event_count bigint NOT NULL DEFAULT 0,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, keyword_id)
);
