-- For each month, resolution and cell: the most frequent block, district, beat, ward and community
-- area of its geolocated incidents (ties: the smallest value; for blocks, alphabetical), and a label
-- built from them. Reads h3_label_blocks, h3_label_areas, h3_blocks and community_area_names.
-- arg_max(value, n * 2^24 - value) picks the most frequent value and, on a tie, the smallest.
WITH blocks AS (
    SELECT month, cell,
           any_value(resolution) AS resolution,
           sum(n) AS incidents,
           arg_max(block_id, n * 16777216 - block_id) AS block_id,
           max(n) FILTER (block_id IS NOT NULL) AS top_block_incidents,
           count(block_id) AS blocks
    FROM h3_label_blocks GROUP BY month, cell
), combos AS (
    -- district, beat, ward and community area go together with the place: most cells have a single
    -- combination of the four, which is then each one's most frequent value without counting
    SELECT *, count(*) OVER (PARTITION BY month, cell) AS combos FROM h3_label_areas
), mixed AS (
    SELECT * FROM combos WHERE combos > 1
), per_value AS (
    -- the four areas' counts in the other cells go through one aggregate, told apart by kind, and are
    -- pivoted back per cell: cheaper than four aggregates joined together
    SELECT month, cell, 1 AS kind, district AS value, sum(n) AS n
    FROM mixed WHERE district IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT month, cell, 2, beat, sum(n) FROM mixed WHERE beat IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT month, cell, 3, ward, sum(n) FROM mixed WHERE ward IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT month, cell, 4, community_area, sum(n) FROM mixed WHERE community_area IS NOT NULL GROUP BY ALL
), top AS (
    SELECT month, cell, kind, arg_max(value, n * 16777216 - value) AS value FROM per_value GROUP BY ALL
), areas AS (
    SELECT month, cell,
           max(value) FILTER (kind = 1) AS district,
           max(value) FILTER (kind = 2) AS beat,
           max(value) FILTER (kind = 3) AS ward,
           max(value) FILTER (kind = 4) AS community_area
    FROM top GROUP BY month, cell
    UNION ALL
    SELECT month, cell, district, beat, ward, community_area FROM combos WHERE combos = 1
)
SELECT
    month_key(b.month) AS month, b.resolution, h3_hex(b.cell) AS h3_cell, b.incidents,
    blocks.block AS top_block, b.top_block_incidents / b.incidents AS top_block_share, b.blocks,
    a.district, a.beat, a.ward, a.community_area, names.name AS community_area_name,
    concat_ws(', ', blocks.block, names.name, 'district ' || a.district) AS label
FROM blocks AS b
LEFT JOIN areas AS a USING (month, cell)
LEFT JOIN h3_blocks AS blocks USING (block_id)
LEFT JOIN community_area_names AS names ON names.community_area = a.community_area
