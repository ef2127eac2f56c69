"""Ingestion, plain part: the Socrata client and the bulk-export files, staging and normalising records into
``raw_incidents`` (sql/raw_incidents.sql), the stations table, change detection for the new-data sensor, and
the quality gates of the raw and enriched tables. Its Dagster definitions are in crime_assets/defs/ingestion."""
