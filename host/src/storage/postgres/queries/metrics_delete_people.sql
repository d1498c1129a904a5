-- The rollup rows of the days $1 to $2 (inclusive), before they are recomputed.
DELETE FROM metrics_daily_people WHERE day BETWEEN $1 AND $2
