-- Per day and platform: identities discovered in [?1, ?2).
-- ?3: the day offset as a SQLite date modifier (`+3600 seconds`); ?4: now.
INSERT INTO metrics_daily_identities (day, platform, new_identities, computed_at)
SELECT date(i.discovered_at, ?3),
       i.platform,
       count(*),
       ?4
  FROM identities i
 WHERE i.discovered_at >= ?1 AND i.discovered_at < ?2
 GROUP BY 1, 2
