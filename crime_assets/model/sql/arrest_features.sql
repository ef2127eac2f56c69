-- The incident fields the arrest features are built from, for a range of months of incidents_enriched.
-- H3 cells come back as 64-bit integers (0 = no cell), the form the packaged model computes from
-- coordinates; never NULL, so they stay exact integers in pandas.
-- `arrest` is the label (and, for earlier months, the history's numerator), never a feature.
SELECT
    id,
    month,
    case_number,
    occurred_at,
    block,
    iucr,
    primary_type,
    location_description,
    fbi_code,
    domestic,
    beat,
    district,
    ward,
    community_area,
    latitude,
    longitude,
    nearest_station_district,
    station_distance_m,
    COALESCE(('0x' || h3_r8)::UBIGINT, 0) AS h3_r8,
    COALESCE(('0x' || h3_r10)::UBIGINT, 0) AS h3_r10,
    arrest
FROM incidents_enriched
WHERE month BETWEEN $first AND $last
