-- The `analytics` job's rollups added by ../../migrations/0003_daily_people_metrics.sql:
-- active people per day and identities discovered per day (same tables and columns;
-- days are TEXT YYYY-MM-DD, timestamps TEXT as in 0001).

CREATE TABLE IF NOT EXISTS metrics_daily_people (
    day             TEXT NOT NULL PRIMARY KEY,
    active_people   INTEGER NOT NULL DEFAULT 0,
    active_accounts INTEGER NOT NULL DEFAULT 0,
    computed_at     TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS metrics_daily_identities (
    day            TEXT NOT NULL,
    platform       TEXT NOT NULL,
    new_identities INTEGER NOT NULL DEFAULT 0,
    computed_at    TEXT NOT NULL,
    PRIMARY KEY (day, platform)
);

CREATE INDEX IF NOT EXISTS identities_discovered_at_idx ON identities (discovered_at);
