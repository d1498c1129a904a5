-- A person's link between identities $1 < $2 ($3 confidence, $4 link source, $5 score,
-- $6 reason). One active link per pair: an active link is updated in place; a pair with
-- only removed (inactive) links gets a new active row. Returns whether a row was
-- inserted (xmax = 0).
INSERT INTO identity_links (identity_id_1, identity_id_2, confidence, link_source,
                            confidence_score, reason, is_active)
VALUES ($1, $2, $3, $4, $5, $6, true)
    ON CONFLICT (identity_id_1, identity_id_2) WHERE is_active DO UPDATE SET
       confidence = EXCLUDED.confidence,
       link_source = EXCLUDED.link_source,
       confidence_score = EXCLUDED.confidence_score,
       reason = EXCLUDED.reason
RETURNING (xmax = 0)
