-- The ids of the accounts ($1 platforms, $2 platform user ids).
SELECT i.id, i.platform, i.platform_user_id
  FROM identities i
  JOIN UNNEST($1::text[], $2::text[]) AS t(p, u)
    ON i.platform = t.p AND i.platform_user_id = t.u
