"""Freshness: the last complete month of raw_incidents and incidents_enriched is materialised within
``CRIME_FRESHNESS_DAYS`` days after the month ends (Chicago time).

Dagster's time-partition freshness check: from the deadline on (00:00 on day N+1 of the next month),
it passes only if the month that ended before the deadline has a materialisation. Before the deadline
it judges the month before. Its severity is WARN: a late month is a signal, not bad data, and nothing
downstream needs to stop. The failed check reaches people through the alert sensor (CRIME_ALERT_ON_WARN
names ``freshness_check`` by default).

The freshness sensor (RUNNING by default) launches the check when it could have become overdue; once it
has failed it waits until the asset is materialised again (which re-runs the check).

These builders are marked "superseded" by FreshnessPolicy in Dagster 1.13. FreshnessPolicy reports
freshness as its own state, not as a check evaluation, so it would bypass the alert sensor; the
check keeps freshness in the same path as every other gate.
"""

from __future__ import annotations

import warnings

import dagster as dg

from crime_assets.defs.common.partitions import monthly_partitions

FRESHNESS_SENSOR_NAME = "freshness_checks_sensor"
FRESHNESS_ASSETS = [dg.AssetKey("raw_incidents"), dg.AssetKey("incidents_enriched")]


def deadline_cron(days: int) -> str:
    """Midnight at the start of day ``days + 1``: ``days`` whole days after the previous month ended."""
    if not 1 <= days <= 27:
        raise ValueError(f"freshness days must be from 1 to 27 (every month has a 28th), got {days}")
    return f"0 0 {days + 1} * *"


def build_freshness_checks(days: int) -> list[dg.AssetChecksDefinition]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.SupersessionWarning)
        return list(dg.build_time_partition_freshness_checks(
            assets=FRESHNESS_ASSETS,
            deadline_cron=deadline_cron(days),
            timezone=monthly_partitions.timezone,
            severity=dg.AssetCheckSeverity.WARN,
        ))


def build_freshness_sensor(checks: list[dg.AssetChecksDefinition], minimum_interval_seconds: int = 3600
                           ) -> dg.SensorDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.SupersessionWarning)
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=FRESHNESS_SENSOR_NAME,
            minimum_interval_seconds=minimum_interval_seconds,
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
