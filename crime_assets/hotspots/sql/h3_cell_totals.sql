-- One row per month, resolution and cell: counts, the dominant primary type (ties: alphabetical, which
-- is type_id order) and the incidents of each crime category; the per-category sums are generated from
-- crime_categories.py in place of the placeholder below.
CREATE OR REPLACE TEMP TABLE h3_cell_totals AS
SELECT
    month,
    cell,
    any_value(resolution) AS resolution,
    sum(incidents)::BIGINT AS incidents,
    sum(arrests)::BIGINT AS arrests,
    sum(domestic_incidents)::BIGINT AS domestic_incidents,
    arg_max(type_id, incidents * 4096 - type_id) AS dominant_type_id,
    max(incidents) AS dominant_type_incidents,
    CATEGORY_COUNTS
FROM h3_cell_types
GROUP BY month, cell
