-- The window's blocks in alphabetical order: block_id stands for the block while counting (integer
-- keys group faster than text), and its order breaks ties between equally frequent blocks.
CREATE OR REPLACE TEMP TABLE h3_blocks AS
SELECT block, (row_number() OVER (ORDER BY block))::INTEGER AS block_id
FROM (SELECT DISTINCT block FROM incidents_enriched
      WHERE is_geolocated AND block IS NOT NULL AND month BETWEEN $first AND $last)
