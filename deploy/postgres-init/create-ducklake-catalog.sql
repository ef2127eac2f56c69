-- Run once by the postgres image on its first start: the DuckLake catalog gets a database of its own beside
-- Dagster's, owned by the same login (DuckLake creates its tables there on the first write).
CREATE DATABASE crime_lake OWNER dagster;
