-- raw_incidents of the window joined with the computed geography, plus calendar features.
SELECT
    r.*,
    g.geo_status,
    g.geo_status = 'ok' AS is_geolocated,
    g.nearest_station_district,
    g.nearest_station_name,
    g.station_distance_m,
    -- H3 ids as the usual 15-character hex strings ("8a2664c1a2dffff").
    CASE WHEN g.h3_r6 > 0 THEN lower(hex(g.h3_r6)) END AS h3_r6,
    CASE WHEN g.h3_r7 > 0 THEN lower(hex(g.h3_r7)) END AS h3_r7,
    CASE WHEN g.h3_r8 > 0 THEN lower(hex(g.h3_r8)) END AS h3_r8,
    CASE WHEN g.h3_r9 > 0 THEN lower(hex(g.h3_r9)) END AS h3_r9,
    CASE WHEN g.h3_r10 > 0 THEN lower(hex(g.h3_r10)) END AS h3_r10,
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
JOIN incident_geography AS g USING (id)
WHERE r.month BETWEEN $first AND $last
