-- The window's geolocated incidents and arrests per month, r10 cell (as UBIGINT bits), local day, hour of day
-- and primary type (type_id from h3_types: see h3_stats.primary_types_frame). Coarser resolutions are added
-- from these rows (h3_stats.add_parent_rows), as the r10 cell's parents.
CREATE OR REPLACE TEMP TABLE h3_hourly_rows AS
SELECT
    e.month,
    10 AS resolution,
    h3_bits(e.h3_r10) AS cell,
    e.occurred_at::DATE AS day,
    hour(e.occurred_at)::TINYINT AS hour,
    t.type_id,
    count(*)::BIGINT AS incidents,
    count(*) FILTER (e.arrest)::BIGINT AS arrests
FROM incidents_enriched AS e
JOIN h3_types AS t ON t.primary_type IS NOT DISTINCT FROM e.primary_type
WHERE e.is_geolocated AND e.h3_r10 IS NOT NULL AND e.month BETWEEN $first AND $last
GROUP BY ALL
