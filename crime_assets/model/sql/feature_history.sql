-- Incidents and arrests per key over a range of earlier months: one lookup table of the history features.
-- KEYS is replaced by the key columns (e.g. "primary_type, beat"); rows with a missing key part or an
-- unknown arrest outcome do not count.
SELECT KEYS, count(*) AS incidents, count(*) FILTER (WHERE arrest) AS arrests
FROM (FEATURE_ROWS)
WHERE arrest IS NOT NULL AND KEYS_NOT_NULL
GROUP BY ALL
