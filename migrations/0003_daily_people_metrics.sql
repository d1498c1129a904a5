-- The `analytics` job's `daily-metrics` rollups that 0002 has no table for: active
-- people per day (accounts collapsed into people through active identity links) and
-- identities first discovered per day. Like the rollups of 0002 they are recomputed
-- from drowl's tables for a range of days (the range's rows replaced, never incremented).

CREATE TABLE IF NOT EXISTS metrics_daily_people (
    day             date NOT NULL PRIMARY KEY,
    -- Distinct people among the day's event actors: an account with an `identities` row
    -- counts as the connected component of identities it belongs to over active links,
    -- an account without one as itself.
    active_people   bigint NOT NULL DEFAULT 0,
    -- Distinct actor accounts (platform, platform user id) before collapsing.
    active_accounts bigint NOT NULL DEFAULT 0,
    computed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS metrics_daily_identities (
    day            date NOT NULL,
    platform       text NOT NULL,
    -- Identities whose `discovered_at` falls on the day.
    new_identities bigint NOT NULL DEFAULT 0,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, platform)
);

-- New identities per day reads identities by discovery time.
CREATE INDEX IF NOT EXISTS identities_discovered_at_idx ON identities (discovered_at);
