-- The window's geolocated incidents counted per month (month_id), r10 cell (as UBIGINT bits) and police district,
-- beat, ward and community area (kept apart from the blocks: far fewer combinations to roll up).
-- Coarser resolutions are added from these rows (h3_stats.add_parent_rows).
CREATE OR REPLACE TEMP TABLE h3_label_areas AS
SELECT month_id(month) AS month, 10 AS resolution, h3_bits(h3_r10) AS cell, district, beat, ward, community_area, count(*)::BIGINT AS n
FROM incidents_enriched
WHERE is_geolocated AND h3_r10 IS NOT NULL AND month BETWEEN $first AND $last
GROUP BY ALL
