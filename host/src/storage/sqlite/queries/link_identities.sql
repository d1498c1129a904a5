-- A person's link between identities ?2 < ?3 (?1 a fresh row id, ?4 confidence, ?5 link
-- source, ?6 score, ?7 reason, ?8 now). One active link per pair: an active link is
-- updated in place; a pair with only removed (inactive) links gets a new active row.
INSERT INTO identity_links (id, identity_id_1, identity_id_2, confidence, link_source,
                            confidence_score, reason, is_active, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)
    ON CONFLICT (identity_id_1, identity_id_2) WHERE is_active = 1 DO UPDATE SET
       confidence = excluded.confidence,
       link_source = excluded.link_source,
       confidence_score = excluded.confidence_score,
       reason = excluded.reason
