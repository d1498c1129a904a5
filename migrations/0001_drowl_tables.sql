-- drowl's own tables, as its control plane (TypeScript API and UI) reads them.
-- Names, columns and meaning follow drowl's data model; the host only adds columns.
-- Written with IF NOT EXISTS so the migration also applies to a database where drowl's
-- API already created these tables: the host's additions are then added by 0002.

CREATE TABLE IF NOT EXISTS plugins (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    version       text NOT NULL,
    description   text,
    author_name   text,
    author_email  text,
    author_url    text,
    manifest      jsonb NOT NULL DEFAULT '{}'::jsonb,
    config        jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_enabled    boolean NOT NULL DEFAULT false,
    is_installed  boolean NOT NULL DEFAULT true,
    installed_at  timestamptz,
    enabled_at    timestamptz,
    disabled_at   timestamptz,
    last_error    text,
    last_error_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS events (
    id             text COLLATE "C" PRIMARY KEY,
    source         text NOT NULL,
    event_type     text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    ingested_at    timestamptz NOT NULL DEFAULT now(),
    raw_payload    jsonb NOT NULL,
    storage_key    text,
    plugin_id      text NOT NULL,
    plugin_version text NOT NULL,
    correlation_id text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_source_idx ON events (source);
CREATE INDEX IF NOT EXISTS events_event_type_idx ON events (event_type);
CREATE INDEX IF NOT EXISTS events_occurred_at_idx ON events (occurred_at);
CREATE INDEX IF NOT EXISTS events_plugin_id_idx ON events (plugin_id);
CREATE INDEX IF NOT EXISTS events_raw_payload_gin_idx ON events USING gin (raw_payload);

CREATE TABLE IF NOT EXISTS identities (
    id                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    platform          text NOT NULL,
    platform_user_id  text NOT NULL,
    platform_username text,
    display_name      text,
    profile_url       text,
    avatar_url        text,
    discovered_at     timestamptz NOT NULL DEFAULT now(),
    last_verified_at  timestamptz,
    is_active         boolean NOT NULL DEFAULT true,
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT identities_platform_user_key UNIQUE (platform, platform_user_id)
);

CREATE TABLE IF NOT EXISTS identity_links (
    id               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    identity_id_1    text NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    identity_id_2    text NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    confidence       text NOT NULL
        CHECK (confidence IN ('manual', 'high', 'medium', 'low', 'suggested')),
    link_source      text NOT NULL,
    confidence_score real NOT NULL CHECK (confidence_score >= 0 AND confidence_score <= 1),
    reason           text,
    plugin_id        text,
    created_by       text,
    is_active        boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT identity_links_ordered_pair CHECK (identity_id_1 < identity_id_2)
);
-- One active link per (ordered) pair.
CREATE UNIQUE INDEX IF NOT EXISTS identity_links_one_active_idx
    ON identity_links (identity_id_1, identity_id_2) WHERE is_active;
CREATE INDEX IF NOT EXISTS identity_links_id2_idx ON identity_links (identity_id_2);

CREATE TABLE IF NOT EXISTS keywords (
    id             text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    term           text NOT NULL,
    category       text NOT NULL DEFAULT 'custom'
        CHECK (category IN ('product', 'technology', 'topic', 'competitor', 'event', 'person', 'custom')),
    match_strategy text NOT NULL DEFAULT 'word_boundary'
        CHECK (match_strategy IN ('exact', 'word_boundary', 'substring', 'regex')),
    regex_pattern  text,
    is_active      boolean NOT NULL DEFAULT true,
    priority       integer NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 10),
    synonyms       text[] NOT NULL DEFAULT '{}',
    description    text,
    tags           text[] NOT NULL DEFAULT '{}',
    reference_url  text,
    created_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS keywords_active_idx ON keywords (is_active, priority DESC);

CREATE TABLE IF NOT EXISTS jobs (
    id                     text PRIMARY KEY,
    type                   text NOT NULL
        CHECK (type IN ('event_ingestion', 'identity_resolution', 'keyword_extraction', 'analytics',
                        'report_generation', 'data_export', 'cleanup', 'custom')),
    name                   text NOT NULL,
    status                 text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'timeout')),
    priority               integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 10),
    input                  jsonb NOT NULL DEFAULT '{}'::jsonb,
    output                 jsonb,
    error_message          text,
    error_stack            text,
    error_code             text,
    error_details          jsonb,
    created_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    completed_at           timestamptz,
    timeout_ms             integer NOT NULL DEFAULT 300000,
    retry_attempt          integer NOT NULL DEFAULT 0,
    retry_max_attempts     integer NOT NULL DEFAULT 3,
    retry_backoff_strategy text NOT NULL DEFAULT 'exponential'
        CHECK (retry_backoff_strategy IN ('linear', 'exponential')),
    retry_last_at          timestamptz,
    plugin_id              text,
    user_id                text,
    correlation_id         text,
    parent_job_id          text,
    tags                   text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_status_idx ON jobs (status, priority DESC, created_at);
CREATE INDEX IF NOT EXISTS jobs_correlation_id_idx ON jobs (correlation_id);
