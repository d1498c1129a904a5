-- Suggested links as ordered pairs; a pair that already has an active link keeps it.
INSERT INTO identity_links (identity_id_1, identity_id_2, confidence, link_source,
                            confidence_score, reason, plugin_id)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::real[],
                     $6::text[], $7::text[])
    ON CONFLICT (identity_id_1, identity_id_2) WHERE is_active DO NOTHING
