-- raw_incidents of the window joined with the geography of their points (point_geography, computed by
-- enrich.point_geography once per distinct point) and the district stations, plus calendar features.
-- H3 ids are the usual 15-character hex strings ("8a2664c1a2dffff"); r6-r9 are parents of the r10 cell.
SELECT
    r.*,
    -- no row in point_geography: the incident has no coordinates
    coalesce(g.geo_status::VARCHAR, 'missing') AS geo_status,
    coalesce(g.geo_status::VARCHAR = 'ok', false) AS is_geolocated,
    s.district AS nearest_station_district,
    s.name AS nearest_station_name,
    CASE WHEN s.station IS NOT NULL THEN g.station_distance_m END AS station_distance_m,
    CASE WHEN g.h3_r10 > 0 THEN h3_hex(h3_parent_bits(g.h3_r10, 6)) END AS h3_r6,
    CASE WHEN g.h3_r10 > 0 THEN h3_hex(h3_parent_bits(g.h3_r10, 7)) END AS h3_r7,
    CASE WHEN g.h3_r10 > 0 THEN h3_hex(h3_parent_bits(g.h3_r10, 8)) END AS h3_r8,
    CASE WHEN g.h3_r10 > 0 THEN h3_hex(h3_parent_bits(g.h3_r10, 9)) END AS h3_r9,
    CASE WHEN g.h3_r10 > 0 THEN h3_hex(g.h3_r10) END AS h3_r10,
    hour(r.occurred_at) AS hour,
    isodow(r.occurred_at) AS day_of_week,
    isodow(r.occurred_at) >= 6 AS is_weekend,
    CASE WHEN month(r.occurred_at) IN (12, 1, 2) THEN 'winter'
         WHEN month(r.occurred_at) IN (3, 4, 5) THEN 'spring'
         WHEN month(r.occurred_at) IN (6, 7, 8) THEN 'summer'
         ELSE 'autumn' END AS season,
    CASE WHEN hour(r.occurred_at) < 6 THEN 'night'
         WHEN hour(r.occurred_at) < 12 THEN 'morning'
         WHEN hour(r.occurred_at) < 18 THEN 'afternoon'
         ELSE 'evening' END AS time_of_day,
    sin(2 * pi() * (hour(r.occurred_at) + minute(r.occurred_at) / 60) / 24) AS hour_sin,
    cos(2 * pi() * (hour(r.occurred_at) + minute(r.occurred_at) / 60) / 24) AS hour_cos,
    sin(2 * pi() * (isodow(r.occurred_at) - 1) / 7) AS dow_sin,
    cos(2 * pi() * (isodow(r.occurred_at) - 1) / 7) AS dow_cos,
    sin(2 * pi() * (month(r.occurred_at) - 1) / 12) AS month_sin,
    cos(2 * pi() * (month(r.occurred_at) - 1) / 12) AS month_cos
FROM raw_incidents AS r
LEFT JOIN point_geography AS g ON g.latitude = r.latitude AND g.longitude = r.longitude
LEFT JOIN district_stations AS s ON s.station = g.station
WHERE r.month BETWEEN $first AND $last
