-- Links a plugin proposed, as ordered pairs, written only for a pair with no link row at
-- all: an active link is kept as it is, and a link a person removed (only inactive rows)
-- is never brought back. ON CONFLICT covers a concurrent writer of the same pair, whose
-- row this statement cannot see yet.
INSERT INTO identity_links (identity_id_1, identity_id_2, confidence, link_source,
                            confidence_score, reason, plugin_id)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::real[],
                     $6::text[], $7::text[]) AS t(one, two, c, src, score, why, plugin)
 WHERE NOT EXISTS (SELECT 1 FROM identity_links l
                    WHERE l.identity_id_1 = t.one AND l.identity_id_2 = t.two)
    ON CONFLICT (identity_id_1, identity_id_2) WHERE is_active DO NOTHING
