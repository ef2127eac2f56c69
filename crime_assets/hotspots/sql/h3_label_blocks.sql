-- The window's geolocated incidents counted per month (month_id), r10 cell (as UBIGINT bits) and block (block_id:
-- its place in h3_blocks). Coarser resolutions are added from these rows (h3_stats.add_parent_rows).
CREATE OR REPLACE TEMP TABLE h3_label_blocks AS
SELECT month_id(e.month) AS month, 10 AS resolution, h3_bits(e.h3_r10) AS cell, b.block_id, count(*)::BIGINT AS n
FROM incidents_enriched AS e
LEFT JOIN h3_blocks AS b USING (block)
WHERE e.is_geolocated AND e.h3_r10 IS NOT NULL AND e.month BETWEEN $first AND $last
GROUP BY ALL
