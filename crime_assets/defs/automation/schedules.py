"""monthly_schedule: the previous month through the whole monthly graph, once a month.

Chicago publishes incidents about a week late, so the default run is on the 8th at 06:00 Chicago time
(CRIME_SCHEDULE_DAY, CRIME_SCHEDULE_HOUR), when the month just ended is nearly complete. Later edits
to it are picked up by new_data_sensor.
"""

from __future__ import annotations

import dagster as dg

from crime_assets.common.settings import AutomationSettings


def build_monthly_schedule(job: dg.UnresolvedAssetJobDefinition, settings: AutomationSettings) -> dg.ScheduleDefinition:
    """A schedule for ``monthly_assets_job`` that requests the month before each tick (the newest
    partition: partitions end at the last complete month), in the partitions' timezone, Chicago."""
    return dg.build_schedule_from_partitioned_job(
        job,
        name="monthly_schedule",
        day_of_month=settings.schedule_day,
        hour_of_day=settings.schedule_hour,
        minute_of_hour=0,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"monthly_assets_job for the previous month, on day {settings.schedule_day} of each month at "
                    f"{settings.schedule_hour:02d}:00 Chicago time.",
    )
