-- Per day: distinct people and distinct accounts among the actors of events that
-- occurred in [?1, ?2).
-- ?3: the day offset as a SQLite date modifier (`+3600 seconds`); ?4: now.
--
-- A person is a connected component of identities over active links, named by the
-- smallest identity id it holds: `reach` walks the links (both directions) from each
-- actor's identity only, and UNION drops pairs already found, so cycles end. An actor
-- account with no `identities` row is a person of its own.
-- The walk costs the square of a component's size (each member walks it all): fine
-- for people, a handful of accounts each; a link heuristic that chained thousands of
-- accounts into one "person" would show here first.
WITH RECURSIVE
day_accounts AS (
    SELECT DISTINCT
           date(e.occurred_at, ?3) AS day,
           e.actor_platform AS platform,
           e.actor_platform_user_id AS user_id
      FROM events e
     WHERE e.occurred_at >= ?1 AND e.occurred_at < ?2
       AND e.actor_platform IS NOT NULL AND e.actor_platform_user_id IS NOT NULL
),
accounts AS (
    SELECT d.day, d.platform, d.user_id, i.id AS identity_id
      FROM day_accounts d
      LEFT JOIN identities i ON i.platform = d.platform AND i.platform_user_id = d.user_id
),
edges (a, b) AS (
    SELECT identity_id_1, identity_id_2 FROM identity_links WHERE is_active = 1
    UNION ALL
    SELECT identity_id_2, identity_id_1 FROM identity_links WHERE is_active = 1
),
reach (start_id, id) AS (
    SELECT DISTINCT identity_id, identity_id FROM accounts WHERE identity_id IS NOT NULL
    UNION
    SELECT r.start_id, e.b FROM reach r JOIN edges e ON e.a = r.id
),
person AS (
    SELECT start_id, min(id) AS person_id FROM reach GROUP BY start_id
),
people AS (
    SELECT DISTINCT a.day,
           p.person_id IS NULL AS unlinked,
           coalesce(p.person_id, a.platform || char(31) || a.user_id) AS who
      FROM accounts a
      LEFT JOIN person p ON p.start_id = a.identity_id
)
INSERT INTO metrics_daily_people (day, active_people, active_accounts, computed_at)
SELECT c.day, p.n, c.n, ?4
  FROM (SELECT day, count(*) AS n FROM accounts GROUP BY day) c
  JOIN (SELECT day, count(*) AS n FROM people GROUP BY day) p ON p.day = c.day
