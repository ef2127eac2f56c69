"""The date-sensitive pieces at fixed dates: the months a sensor watches, the schedule's month, the freshness
check's verdict and the re-dating of real records, on the 1st of March, the 31st of a month, the 30th of
November, New Year's Day of a leap year and a 29th of February. The other tests pin their clock
(helpers.CLOCK); this one moves it, so that the suite would catch code that only works on some days."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest
import time_machine

from crime_assets.common.months import month_key, shift_month
from crime_assets.definitions import build_defs
from crime_assets.defs.ingestion.sensors import watched_months
from crime_assets.runs import materialize_months
from crime_assets_tests.fake_socrata import export_rows_to_api_records
from crime_assets_tests.helpers import at_clock, redated, sample_rows, settings_for, write_export

CHICAGO = ZoneInfo("America/Chicago")
DATES = [datetime(2027, 3, 1, 0, 30), datetime(2027, 1, 31, 23, 30), datetime(2027, 11, 30, 12, 0),
         datetime(2028, 1, 1, 0, 5), datetime(2028, 2, 29, 18, 0)]
FRESHNESS_DAYS = 14  # the default: a month is due 14 days after it ends


def last_complete_month(moment: datetime) -> str:
    return shift_month(month_key(moment), -1)


@pytest.fixture(params=DATES, ids=[d.strftime("%Y-%m-%d") for d in DATES])
def moment(request) -> datetime:
    return request.param.replace(tzinfo=CHICAGO)


def test_the_sensor_watches_the_complete_months_before_the_date(moment):
    with at_clock(moment):
        months = watched_months(24)
        assert watched_months(None)[0] == "2001-01" and watched_months(None)[-1] == months[-1]
    assert len(months) == 24 and months[-1] == last_complete_month(moment)
    assert months[0] == shift_month(months[-1], -23)


def test_the_schedule_of_the_month_runs_the_month_before(tmp_path, moment):
    schedule = build_defs(settings_for(tmp_path)).resolve_schedule_def("monthly_schedule")
    tick = moment.replace(day=8, hour=6, minute=0)
    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert [r.partition_key for r in result.run_requests] == [last_complete_month(tick)]


def test_redated_records_are_valid_dates_of_the_target_month(moment):
    target = last_complete_month(moment)
    for source in ("2016-01", "2016-10", "2016-12"):  # months with 31 days, into months of 28 to 31
        moved = redated(sample_rows(source, 2000), target)
        dates = pd.to_datetime(moved["Date"], format="%m/%d/%Y %I:%M:%S %p")
        assert dates.dt.strftime("%Y-%m").eq(target).all()
        assert len(export_rows_to_api_records(moved)) == 2000


def test_freshness_judges_the_month_that_is_due_at_the_date(tmp_path, moment):
    """With the clock at the date, the freshness check fails until the month due then is loaded, then passes."""
    newest = last_complete_month(moment)
    due = newest if moment.day > FRESHNESS_DAYS else shift_month(newest, -1)
    exports = tmp_path / "exports"
    write_export(exports / f"crimes_{due}.csv", redated(sample_rows("2016-10", 300), due))
    settings = settings_for(tmp_path / "data", CRIME_EXPORT_PATH=str(exports))
    defs = build_defs(settings)
    check = dg.AssetCheckKey(dg.AssetKey("raw_incidents"), "freshness_check")
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(),
                                                                 asset_check_selection={check})
    with time_machine.travel(moment, tick=True), dg.instance_for_test() as instance:
        assert freshness_passed(job, instance) is False
        assert materialize_months(["raw_incidents"], due, None, settings, instance=instance).success
        assert freshness_passed(job, instance) is True


def freshness_passed(job, instance) -> bool:
    result = job.execute_in_process(instance=instance)
    [evaluation] = [e.asset_check_evaluation_data for e in result.all_events
                    if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return evaluation.passed
