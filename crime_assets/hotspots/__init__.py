"""Hotspots, plain part: the H3 gold tables (h3_stats.py, sql/), the hotspot test and the maps. Its Dagster
definitions are in crime_assets/defs/hotspots."""
