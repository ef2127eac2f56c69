"""Monitoring, plain part: drift statistics and the alert records. Its Dagster definitions are in
crime_assets/defs/monitoring."""
