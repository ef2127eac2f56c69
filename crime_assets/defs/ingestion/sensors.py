"""new_data_sensor: polls the source cheaply and requests raw_incidents for every month whose records changed.

Chicago publishes incidents about a week late and keeps editing old ones, so the sensor watches the
last CRIME_SENSOR_LOOKBACK_MONTHS complete months (or all), not only the newest. What a month looked
like at the source is kept in the cursor (crime_assets.ingestion.change_detection); each run request has a
run key made of the month and that fingerprint, so one change launches one run however often the
sensor ticks. Only raw_incidents is requested: the automation sensor takes the month's chain from there.
"""

from __future__ import annotations

import json

import dagster as dg

from crime_assets.ingestion.change_detection import Fingerprint, months_to_run
from crime_assets.defs.common.partitions import monthly_partitions
from crime_assets.defs.ingestion.resources import CrimeSource
from crime_assets.common.settings import AutomationSettings

RAW = dg.AssetKey("raw_incidents")


def watched_months(lookback_months: int | None) -> list[str]:
    """The newest ``lookback_months`` complete months (every month when None), oldest first."""
    keys = monthly_partitions.get_partition_keys()
    return keys if lookback_months is None else keys[-lookback_months:]


def latest_materialisations(instance: dg.DagsterInstance, months: list[str]) -> dict[str, float]:
    """When raw_incidents was last materialised for each of ``months`` that ever was (POSIX seconds)."""
    found = {}
    for month in months:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=RAW, asset_partitions=[month]), limit=1).records
        if records:
            found[month] = records[0].timestamp
    return found


def build_new_data_sensor(settings: AutomationSettings) -> dg.SensorDefinition:
    lookback = "every month" if settings.sensor_lookback_months is None else \
        f"the last {settings.sensor_lookback_months} complete months"

    @dg.sensor(
        name="new_data_sensor",
        target=dg.AssetSelection.assets(RAW),
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Polls the source (Socrata: row count and newest updated_on per month; export: files) for "
                    f"{lookback} and requests raw_incidents for each month that is new or changed.",
    )
    def new_data_sensor(context: dg.SensorEvaluationContext, source: CrimeSource) -> dg.SensorResult:
        previous: dict[str, str] = json.loads(context.cursor)["months"] if context.cursor else {}
        current = source.month_fingerprints(watched_months(settings.sensor_lookback_months), previous)
        # A month the cursor has not seen yet is compared with its latest materialisation instead.
        unseen = [m for m, text in current.items() if m not in previous and not Fingerprint.parse(text).is_empty]
        changes = months_to_run(previous, current, latest_materialisations(context.instance, unseen))
        cursor = json.dumps({"months": current}, sort_keys=True)
        if not changes:
            return dg.SensorResult(skip_reason=f"no month changed among {len(current)} watched", cursor=cursor)
        for change in changes:
            context.log.info("%s: %s (%s)", change.month, change.reason, change.fingerprint.text())
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"raw_incidents:{change.month}:{change.fingerprint.digest()}",
                    partition_key=change.month,
                    asset_selection=[RAW],
                    tags={
                        "crime/trigger": "new_data_sensor",
                        "crime/change": change.reason,
                        "crime/source_rows": "" if change.fingerprint.rows is None else str(change.fingerprint.rows),
                        "crime/source_newest": change.fingerprint.newest or "",
                    },
                )
                for change in changes
            ],
            cursor=cursor,
        )

    return new_data_sensor
