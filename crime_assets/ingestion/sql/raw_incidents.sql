-- Type every staged source row into the canonical raw_incidents columns, in one pass over the
-- source, and say why a row cannot be used (reason IS NULL: usable). Both sources arrive as text
-- with snake-cased names; the export writes dates as "MM/DD/YYYY hh:mm:ss AM", the JSON API as
-- ISO "2016-03-01T12:00:00.000".
CREATE OR REPLACE TEMP TABLE typed_incidents AS
WITH parsed AS (
    SELECT
        s.*,
        -- Dates are Chicago local time: one with a UTC offset (which a cast would silently drop) is refused,
        -- as load_model() refuses it.
        COALESCE(TRY_STRPTIME(trim(s.date), '%m/%d/%Y %I:%M:%S %p'),
                 TRY_CAST(CASE WHEN NOT regexp_matches(trim(s.date), '[0-9]:[0-9]{2}(:[0-9]{2}(\.[0-9]*)?)?\s*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$')
                               THEN trim(s.date) END AS TIMESTAMP)) AS occurred_t,
        COALESCE(TRY_STRPTIME(trim(s.updated_on), '%m/%d/%Y %I:%M:%S %p'), TRY_CAST(trim(s.updated_on) AS TIMESTAMP)) AS updated_t
    FROM staged_incidents AS s
),
typed AS (
    SELECT
        TRY_CAST(trim(id) AS BIGINT) AS id,
        nullif(trim(case_number), '') AS case_number,
        occurred_t AS occurred_at,
        nullif(trim(block), '') AS block,
        nullif(trim(iucr), '') AS iucr,
        nullif(trim(primary_type), '') AS primary_type,
        nullif(trim(description), '') AS description,
        nullif(trim(location_description), '') AS location_description,
        CASE WHEN lower(trim(arrest)) IN ('true', 't', '1', 'y', 'yes') THEN true
         WHEN lower(trim(arrest)) IN ('false', 'f', '0', 'n', 'no') THEN false END AS arrest,
        CASE WHEN lower(trim(domestic)) IN ('true', 't', '1', 'y', 'yes') THEN true
         WHEN lower(trim(domestic)) IN ('false', 'f', '0', 'n', 'no') THEN false END AS domestic,
        TRY_CAST(trim(beat) AS INTEGER) AS beat,
        TRY_CAST(trim(district) AS INTEGER) AS district,
        TRY_CAST(trim(ward) AS INTEGER) AS ward,
        TRY_CAST(trim(community_area) AS INTEGER) AS community_area,
        nullif(trim(fbi_code), '') AS fbi_code,
        TRY_CAST(trim(x_coordinate) AS DOUBLE) AS x_coordinate,
        TRY_CAST(trim(y_coordinate) AS DOUBLE) AS y_coordinate,
        -- The export's optional Location "(lat, lon)" and the API's location object back up the plain fields.
        COALESCE(TRY_CAST(trim(latitude) AS DOUBLE),
             TRY_CAST(regexp_extract(location, '\(\s*(-?[0-9.]+)\s*,', 1) AS DOUBLE),
             TRY_CAST(regexp_extract(location, 'latitude[''"]?\s*:\s*[''"]?(-?[0-9.]+)', 1) AS DOUBLE)) AS latitude,
        COALESCE(TRY_CAST(trim(longitude) AS DOUBLE),
             TRY_CAST(regexp_extract(location, ',\s*(-?[0-9.]+)\s*\)', 1) AS DOUBLE),
             TRY_CAST(regexp_extract(location, 'longitude[''"]?\s*:\s*[''"]?(-?[0-9.]+)', 1) AS DOUBLE)) AS longitude,
        updated_t AS updated_on,
        strftime(occurred_t, '%Y-%m') AS month,
        _source AS source,
        CASE
            WHEN nullif(trim(parsed.id), '') IS NULL THEN 'missing_id'
            WHEN TRY_CAST(trim(parsed.id) AS BIGINT) IS NULL THEN 'invalid_id'
            WHEN nullif(trim(parsed.date), '') IS NULL THEN 'missing_date'
            -- a date a plain cast reads, refused above for its offset
            WHEN occurred_t IS NULL AND TRY_CAST(trim(parsed.date) AS TIMESTAMP) IS NOT NULL THEN 'date_has_utc_offset'
            WHEN occurred_t IS NULL THEN 'unparseable_date'
            WHEN occurred_t < $start OR occurred_t >= $end THEN 'date_outside_partition'
        END AS first_reason,
        COALESCE(_requested_month, strftime(occurred_t, '%Y-%m')) AS quarantine_month,
        parsed.id AS raw_id, parsed.case_number AS raw_case_number, parsed.date AS raw_date,
        parsed.updated_on AS raw_updated_on,
        CASE WHEN first_reason IS NOT NULL THEN json_object(RECORD_FIELDS)::VARCHAR END AS record
    FROM parsed
    -- An export file holds many months: rows of other months are simply not this run's.
    -- A source asked for this window only (Socrata) must account for every row it returned.
    WHERE $keep_outside OR occurred_t IS NULL OR (occurred_t >= $start AND occurred_t < $end)
)
SELECT
    * EXCLUDE (first_reason),
    COALESCE(
        first_reason,
        -- The same record may come twice (two export snapshots, a page boundary): the newest update wins.
        CASE WHEN row_number() OVER (
            PARTITION BY id, first_reason IS NULL
            ORDER BY updated_on DESC NULLS LAST, occurred_at DESC, source DESC
        ) > 1 THEN 'superseded_duplicate' END
    ) AS reason
FROM typed;
