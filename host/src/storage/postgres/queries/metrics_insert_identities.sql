-- Per day and platform: identities discovered in [$1, $2). $3: the day offset in seconds.
INSERT INTO metrics_daily_identities (day, platform, new_identities, computed_at)
SELECT ((i.discovered_at AT TIME ZONE 'UTC') + $3::integer * interval '1 second')::date,
       i.platform,
       count(*),
       now()
  FROM identities i
 WHERE i.discovered_at >= $1 AND i.discovered_at < $2
 GROUP BY 1, 2
