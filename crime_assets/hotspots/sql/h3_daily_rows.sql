-- The window's geolocated incidents and arrests per month, day and r10 cell (as UBIGINT bits); coarser
-- resolutions are added from these rows (h3_stats.add_parent_rows), as the r10 cell's parents.
CREATE OR REPLACE TEMP TABLE h3_daily_rows AS
SELECT
    month,
    10 AS resolution,
    h3_bits(h3_r10) AS cell,
    occurred_at::DATE AS day,
    count(*)::BIGINT AS incidents,
    count(*) FILTER (arrest)::BIGINT AS arrests
FROM incidents_enriched
WHERE is_geolocated AND h3_r10 IS NOT NULL AND month BETWEEN $first AND $last
GROUP BY ALL
