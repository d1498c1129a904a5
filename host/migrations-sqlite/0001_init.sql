-- drowl-host embedded schema (SQLite). Mirrors the PostgreSQL schema in ../../migrations:
-- same table and column names, so code and queries read the same in both backends.
-- SQLite differences: timestamps are TEXT in a fixed-width UTC form
-- (YYYY-MM-DDTHH:MM:SS.ffffffZ) so they sort and compare as strings; JSON columns and
-- text arrays (synonyms, tags) are JSON TEXT; booleans are INTEGER 0/1.

CREATE TABLE IF NOT EXISTS plugins (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    description   TEXT,
    author_name   TEXT,
    author_email  TEXT,
    author_url    TEXT,
    manifest      TEXT NOT NULL DEFAULT '{}',
    config        TEXT NOT NULL DEFAULT '{}',
    is_enabled    INTEGER NOT NULL DEFAULT 0,
    is_installed  INTEGER NOT NULL DEFAULT 1,
    installed_at  TEXT,
    enabled_at    TEXT,
    disabled_at   TEXT,
    last_error    TEXT,
    last_error_at TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS events (
    id                     TEXT PRIMARY KEY,
    source                 TEXT NOT NULL,
    external_id            TEXT NOT NULL,
    event_type             TEXT NOT NULL,
    occurred_at            TEXT NOT NULL,
    ingested_at            TEXT NOT NULL,
    raw_payload            TEXT NOT NULL,
    storage_key            TEXT,
    text                   TEXT,
    actor_platform         TEXT,
    actor_platform_user_id TEXT,
    plugin_id              TEXT NOT NULL,
    plugin_version         TEXT NOT NULL,
    correlation_id         TEXT,
    created_at             TEXT NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX IF NOT EXISTS events_occurred_at_idx ON events (occurred_at);
CREATE INDEX IF NOT EXISTS events_plugin_id_idx ON events (plugin_id, id);
CREATE INDEX IF NOT EXISTS events_actor_idx ON events (actor_platform, actor_platform_user_id);

CREATE TABLE IF NOT EXISTS identities (
    id                TEXT PRIMARY KEY,
    platform          TEXT NOT NULL,
    platform_user_id  TEXT NOT NULL,
    platform_username TEXT,
    display_name      TEXT,
    profile_url       TEXT,
    avatar_url        TEXT,
    discovered_at     TEXT NOT NULL,
    last_verified_at  TEXT,
    is_active         INTEGER NOT NULL DEFAULT 1,
    metadata          TEXT NOT NULL DEFAULT '{}',
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (platform, platform_user_id)
);

CREATE TABLE IF NOT EXISTS identity_links (
    id               TEXT PRIMARY KEY,
    identity_id_1    TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    identity_id_2    TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    confidence       TEXT NOT NULL
        CHECK (confidence IN ('manual', 'high', 'medium', 'low', 'suggested')),
    link_source      TEXT NOT NULL,
    confidence_score REAL NOT NULL CHECK (confidence_score >= 0 AND confidence_score <= 1),
    reason           TEXT,
    plugin_id        TEXT,
    created_by       TEXT,
    is_active        INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    CHECK (identity_id_1 < identity_id_2)
);
-- drowl's rule: at most one active link per (ordered) pair.
CREATE UNIQUE INDEX IF NOT EXISTS identity_links_one_active_idx
    ON identity_links (identity_id_1, identity_id_2) WHERE is_active = 1;
CREATE INDEX IF NOT EXISTS identity_links_id2_idx ON identity_links (identity_id_2);

CREATE TABLE IF NOT EXISTS keywords (
    id             TEXT PRIMARY KEY,
    term           TEXT NOT NULL,
    category       TEXT NOT NULL DEFAULT 'custom'
        CHECK (category IN ('product', 'technology', 'topic', 'competitor', 'event', 'person', 'custom')),
    match_strategy TEXT NOT NULL DEFAULT 'word_boundary'
        CHECK (match_strategy IN ('exact', 'word_boundary', 'substring', 'regex')),
    regex_pattern  TEXT,
    is_active      INTEGER NOT NULL DEFAULT 1,
    priority       INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 10),
    synonyms       TEXT NOT NULL DEFAULT '[]',
    description    TEXT,
    tags           TEXT NOT NULL DEFAULT '[]',
    reference_url  TEXT,
    created_by     TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS keyword_matches (
    event_id     TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    keyword_id   TEXT NOT NULL,
    matched_text TEXT NOT NULL,
    position     INTEGER NOT NULL,
    occurrences  INTEGER NOT NULL DEFAULT 1,
    plugin_id    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (event_id, keyword_id)
);
CREATE INDEX IF NOT EXISTS keyword_matches_keyword_idx ON keyword_matches (keyword_id);

CREATE TABLE IF NOT EXISTS plugin_kv (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS jobs (
    id                     TEXT PRIMARY KEY,
    type                   TEXT NOT NULL
        CHECK (type IN ('event_ingestion', 'identity_resolution', 'keyword_extraction', 'analytics',
                        'report_generation', 'data_export', 'cleanup', 'custom')),
    name                   TEXT NOT NULL,
    status                 TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'timeout')),
    priority               INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 10),
    input                  TEXT NOT NULL DEFAULT '{}',
    output                 TEXT,
    error_message          TEXT,
    error_stack            TEXT,
    error_code             TEXT,
    error_details          TEXT,
    created_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at             TEXT,
    completed_at           TEXT,
    timeout_ms             INTEGER NOT NULL DEFAULT 300000,
    retry_attempt          INTEGER NOT NULL DEFAULT 0,
    retry_max_attempts     INTEGER NOT NULL DEFAULT 3,
    retry_backoff_strategy TEXT NOT NULL DEFAULT 'exponential'
        CHECK (retry_backoff_strategy IN ('linear', 'exponential')),
    retry_last_at          TEXT,
    plugin_id              TEXT,
    user_id                TEXT,
    correlation_id         TEXT,
    parent_job_id          TEXT,
    tags                   TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_status_idx ON jobs (status, priority DESC, created_at);

-- Analytics rollups, recomputable from events and keyword_matches by the analytics job.
CREATE TABLE IF NOT EXISTS metrics_daily_events (
    day         TEXT NOT NULL,
    source      TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 0,
    actor_count INTEGER NOT NULL DEFAULT 0,
    computed_at TEXT NOT NULL,
    PRIMARY KEY (day, source, event_type)
);

CREATE TABLE IF NOT EXISTS metrics_daily_keywords (
    day         TEXT NOT NULL,
    keyword_id  TEXT NOT NULL,
    match_count INTEGER NOT NULL DEFAULT 0,
    event_count INTEGER NOT NULL DEFAULT 0,
    computed_at TEXT NOT NULL,
    PRIMARY KEY (day, keyword_id)
);
