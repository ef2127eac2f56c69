"""Enrichment, plain part: ``incidents_enriched`` (sql/incidents_enriched.sql) from raw incidents and the
stations. Its Dagster definitions are in crime_assets/defs/enrichment."""
