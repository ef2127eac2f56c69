-- The finished rows of h3_monthly_stats: h3_cell_totals plus the Wilson interval, the neighbour-pooled
-- counts (h3_pooled, computed by h3_stats.ring1_pooled) and the low-confidence flag; cells back to hex.
SELECT
    month_key(t.month) AS month,
    t.resolution,
    h3_hex(t.cell) AS h3_cell,
    CASE WHEN t.resolution > 6 THEN h3_hex(h3_parent_bits(t.cell, t.resolution - 1)) END AS parent_cell,
    t.incidents,
    t.arrests,
    t.arrests / t.incidents AS arrest_rate,
    wilson_lower(t.arrests, t.incidents, $z) AS arrest_rate_lower,
    wilson_upper(t.arrests, t.incidents, $z) AS arrest_rate_upper,
    p.pooled_incidents,
    p.pooled_arrests,
    p.pooled_arrests / p.pooled_incidents AS pooled_arrest_rate,
    p.neighbours_with_incidents,
    t.incidents < $min_incidents
        OR wilson_upper(t.arrests, t.incidents, $z) - wilson_lower(t.arrests, t.incidents, $z) > $max_interval_width
        AS is_low_confidence,
    types.primary_type AS dominant_primary_type,
    t.dominant_type_incidents / t.incidents AS dominant_type_share,
    t.domestic_incidents,
    t.domestic_incidents / t.incidents AS domestic_share,
    t.* EXCLUDE (month, resolution, cell, incidents, arrests, domestic_incidents, dominant_type_id, dominant_type_incidents)
FROM h3_cell_totals AS t
JOIN h3_pooled AS p USING (month, cell)
JOIN h3_types AS types ON types.type_id = t.dominant_type_id
