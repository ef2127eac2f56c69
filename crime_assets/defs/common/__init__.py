"""Dagster pieces every slice shares: the monthly partitions, metadata helpers, quality-gate checks and the
warehouse resource."""
