"""Automation: change detection, the new-data sensor, the monthly schedule and the downstream conditions.

Real Dagster instances, real DuckDB files, the fake Socrata server on loopback. Months: partitions end at
the last complete month; the sensors and conditions are evaluated at the tests' own clock (helpers.CLOCK,
2026-11-21), where 2026-10 is the newest month and 2016 months are old, whatever today's date.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from crime_assets.ingestion.change_detection import (
    EMPTY, Fingerprint, export_fingerprints, months_to_run, socrata_fingerprints,
)
from crime_assets.definitions import build_defs
from crime_assets.defs.automation.conditions import monthly_rematerialisation
from crime_assets.defs.ingestion.sensors import watched_months
from crime_assets.defs.ingestion.resources import QualityGates
from crime_assets.runs import materialize_months
from crime_assets.common.settings import Settings
from crime_assets_tests.fake_socrata import FakeSocrata, export_rows_to_api_records
from crime_assets_tests.helpers import (
    CLOCK, NEWEST, at_clock, query, redated, sample_rows, settings_for, socrata_source, write_export,
)
from crime_assets.defs.resources import build_source

INCIDENTS = "ijzp-q8t2"


def monthly_downstream_of_raw() -> list[str]:
    """Every monthly asset built from raw_incidents (enriched, H3, hotspots, maps, features) that does not
    need a champion: drift_report waits for one (every test here until it makes one)."""
    graph = build_defs(Settings.from_env({})).resolve_asset_graph()  # nothing is written
    keys = dg.AssetSelection.assets("raw_incidents").downstream(include_self=False).resolve(graph)
    needs_champion = dg.AssetSelection.assets("champion_model").downstream().resolve(graph)
    return sorted(k.to_user_string() for k in keys - needs_champion if graph.get(k).partitions_def is not None)


DOWNSTREAM = monthly_downstream_of_raw()


# -- change detection (plain functions) ---------------------------------------------------------------


def test_months_to_run_compares_fingerprints_and_falls_back_to_materialisations():
    old, new = Fingerprint(100, "2026-11-01T10:00:00.000").text(), Fingerprint(101, "2026-11-20T10:00:00.000").text()
    previous = {"2026-08": old, "2026-09": old, "2026-10": EMPTY.text()}
    current = {"2026-08": old, "2026-09": new, "2026-10": new, "2016-03": new, "2016-04": new, "2016-05": EMPTY.text()}
    changed_at = Fingerprint.parse(new).newest_timestamp()
    materialised = {"2016-03": changed_at - 1, "2016-04": changed_at + 1}
    assert [(c.month, c.reason) for c in months_to_run(previous, current, materialised)] == [
        ("2016-03", "changed_since_materialised"), ("2026-09", "updated"), ("2026-10", "new")]
    assert months_to_run(current, current) == []
    assert [(c.month, c.reason) for c in months_to_run({"2026-09": old}, {"2026-09": EMPTY.text()})] == [
        ("2026-09", "emptied")]


def test_socrata_fingerprints_ask_one_aggregate_when_nothing_changed_and_few_when_one_month_did():
    months = [f"{y}-{m:02d}" for y in (2015, 2016) for m in range(1, 13)]
    truth = {m: Fingerprint(1000 + i, f"2018-11-{1 + i % 28:02d}T10:00:00.000") for i, m in enumerate(months)}
    calls = []

    def summarise(first: str, last: str) -> Fingerprint:
        calls.append((first, last))
        span = [truth[m] for m in months if first <= m <= last]
        stamps = [f.newest for f in span if f.newest]
        return Fingerprint(sum(f.rows for f in span), max(stamps) if stamps else None)

    first = socrata_fingerprints(months, {}, summarise)
    assert first == {m: f.text() for m, f in truth.items()}
    known, calls[:] = dict(first), []
    assert socrata_fingerprints(months, known, summarise) == known and len(calls) == 1
    truth["2015-06"] = Fingerprint(1005, "2026-11-20T09:00:00.000")  # one record of an old month edited
    calls.clear()
    assert [m for m, t in socrata_fingerprints(months, known, summarise).items() if known[m] != t] == ["2015-06"]
    assert len(calls) <= 2 * 5 + 1


def test_export_fingerprints_change_only_for_the_months_of_a_changed_file(tmp_path):
    spring = write_export(tmp_path / "spring.csv", pd.concat([sample_rows("2016-03", 50), sample_rows("2016-04", 50)]))
    write_export(tmp_path / "may.csv", sample_rows("2016-05", 50))
    months = ["2016-03", "2016-04", "2016-05", "2016-06"]
    source = build_source(settings_for(tmp_path, CRIME_EXPORT_PATH=str(tmp_path)))
    before = source.month_fingerprints(months, {})
    assert before["2016-06"] == EMPTY.text() and len({before[m] for m in months[:3]}) == 2
    write_export(spring, sample_rows("2016-03", 60))  # the file is re-exported, now without April
    os.utime(spring, ns=(spring.stat().st_atime_ns, spring.stat().st_mtime_ns + 10**9))
    after = source.month_fingerprints(months, before)
    assert [c.month for c in months_to_run(before, after)] == ["2016-03", "2016-04"]
    assert after["2016-04"] == EMPTY.text()
    assert export_fingerprints([], ["2016-03"], lambda p: []) == {"2016-03": EMPTY.text()}


# -- new_data_sensor against the fake Socrata server ---------------------------------------------------------


@pytest.fixture(scope="module")
def socrata_records():
    """A few hundred real records per month: March and April 2016, and October 2016 re-dated to the newest month."""
    return {
        "2016-03": export_rows_to_api_records(sample_rows("2016-03", 300)),
        "2016-04": export_rows_to_api_records(sample_rows("2016-04", 300)),
        NEWEST: export_rows_to_api_records(redated(sample_rows("2016-10", 300), NEWEST)),
    }


class SensorHarness:
    """Ticks new_data_sensor like the daemon does: the cursor of each tick feeds the next."""

    def __init__(self, instance, defs):
        self.instance, self.defs, self.cursor = instance, defs, None
        self.sensor = defs.resolve_sensor_def("new_data_sensor")

    def tick(self, cursor: str | None = ..., advance: bool = True) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(instance=self.instance, definitions=self.defs,
                                          resources=dict(self.defs.resources),  # as the code server does
                                          cursor=self.cursor if cursor is ... else cursor)
        with at_clock():
            result = self.sensor.evaluate_tick(context)
        if advance:
            self.cursor = result.cursor
        return list(result.run_requests or [])


def months_of(requests: list[dg.RunRequest]) -> list[str]:
    return sorted(r.partition_key for r in requests)


def test_new_data_sensor_requests_one_run_per_new_or_changed_month(tmp_path, socrata_records):
    settings = settings_for(tmp_path, CRIME_SOURCE="socrata", CRIME_SENSOR_LOOKBACK_MONTHS="all")
    served = {INCIDENTS: socrata_records["2016-03"] + socrata_records["2016-04"]}
    with FakeSocrata(served) as server, dg.instance_for_test() as instance:
        defs = build_defs(settings, {"source": socrata_source(server.domain)})
        sensor = SensorHarness(instance, defs)

        # First tick: the two months with records were never materialised.
        first = sensor.tick()
        assert months_of(first) == ["2016-03", "2016-04"]
        assert all(r.asset_selection == [dg.AssetKey("raw_incidents")] for r in first)
        assert first[0].tags["crime/change"] == "new" and first[0].tags["crime/source_rows"] == "300"

        # Nothing changes: no request, and one aggregate request to the server for 310 watched months.
        server.requests.clear()
        assert sensor.tick() == [] and len(server.requests) == 1

        # A new month appears.
        server.rows[INCIDENTS] = served[INCIDENTS] + socrata_records[NEWEST]
        new = sensor.tick()
        assert months_of(new) == [NEWEST] and new[0].tags["crime/change"] == "new"
        assert len(server.requests) < 40  # bisection, not one request per month

        # An old month's records are updated (an arrest made later): newest updated_on moves.
        records = [dict(r) for r in server.rows[INCIDENTS]]
        edited = next(r for r in records if r["date"].startswith("2016-03") and not r["arrest"])
        edited.update(arrest=True, updated_on="2026-11-20T08:15:00.000")
        server.rows[INCIDENTS] = records
        updated = sensor.tick()
        assert months_of(updated) == ["2016-03"] and updated[0].tags["crime/change"] == "updated"
        assert updated[0].tags["crime/source_newest"] == "2026-11-20T08:15:00.000"

        # An old month loses a record (count changes, newest stamp does not).
        deleted = next(r for r in records if r["date"].startswith("2016-04"))
        server.rows[INCIDENTS] = [r for r in records if r is not deleted]
        assert months_of(sensor.tick()) == ["2016-04"]

        # Repeated ticks: nothing more with the advanced cursor; the same run keys if a tick is replayed
        # with the old cursor (the daemon launches a run key once).
        assert sensor.tick() == []
        replayed_cursor = sensor.cursor
        server.rows[INCIDENTS] = server.rows[INCIDENTS] + [dict(edited, id="99999999", case_number="ZZ000001")]
        once = sensor.tick(cursor=replayed_cursor, advance=False)
        again = sensor.tick(cursor=replayed_cursor)
        assert months_of(once) == ["2016-03"] and [r.run_key for r in once] == [r.run_key for r in again]
        assert len({r.run_key for r in first + new + updated + once}) == 5  # one per (month, state)


def test_first_tick_compares_materialised_months_with_their_materialisation(tmp_path, socrata_records):
    """A sensor turned on over an existing instance re-runs only months changed after they were loaded."""
    settings = settings_for(tmp_path, CRIME_SOURCE="socrata", CRIME_SENSOR_LOOKBACK_MONTHS="all")
    records = [dict(r) for r in socrata_records["2016-03"] + socrata_records["2016-04"]]
    with FakeSocrata({INCIDENTS: records}) as server, dg.instance_for_test() as instance:
        source = socrata_source(server.domain)
        materialize_months(["raw_incidents"], "2016-03", "2016-04", settings, instance=instance,
                           resources={"source": source})
        april = next(r for r in records if r["date"].startswith("2016-04"))
        later = datetime.now(ZoneInfo("America/Chicago")) + timedelta(minutes=2)  # edited after the load
        april["updated_on"] = later.strftime("%Y-%m-%dT%H:%M:%S.000")
        requests = SensorHarness(instance, build_defs(settings, {"source": source})).tick()
        assert [(r.partition_key, r.tags["crime/change"]) for r in requests] == [("2016-04", "changed_since_materialised")]


def test_new_data_sensor_watches_export_files(tmp_path):
    exports = tmp_path / "exports"
    write_export(exports / "crimes_2016_spring.csv", pd.concat([sample_rows("2016-03", 200), sample_rows("2016-04", 200)]))
    settings = settings_for(tmp_path, CRIME_EXPORT_PATH=str(exports), CRIME_SENSOR_LOOKBACK_MONTHS="all")
    with dg.instance_for_test() as instance:
        sensor = SensorHarness(instance, build_defs(settings))
        assert months_of(sensor.tick()) == ["2016-03", "2016-04"]
        assert sensor.tick() == []
        write_export(exports / f"crimes_{NEWEST}.csv", redated(sample_rows("2016-10", 200), NEWEST))
        assert months_of(sensor.tick()) == [NEWEST]
        assert sensor.tick() == []


def test_default_lookback_watches_the_last_24_complete_months(tmp_path):
    defs = build_defs(settings_for(tmp_path))
    with at_clock():
        months = watched_months(settings_for(tmp_path).automation.sensor_lookback_months)
    assert len(months) == 24 and months[-1] == NEWEST
    sensor = defs.resolve_sensor_def("new_data_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING and sensor.minimum_interval_seconds == 3600
    fast = build_defs(settings_for(tmp_path, CRIME_SENSOR_INTERVAL_SECONDS="5")).resolve_sensor_def("new_data_sensor")
    assert fast.minimum_interval_seconds == 5


# -- monthly_schedule ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env, cron, tick, month", [
    ({}, "0 6 8 * *", datetime(2026, 12, 8, 6, tzinfo=ZoneInfo("America/Chicago")), "2026-11"),
    ({"CRIME_SCHEDULE_DAY": "10", "CRIME_SCHEDULE_HOUR": "3"}, "0 3 10 * *",
     datetime(2027, 1, 10, 3, tzinfo=ZoneInfo("America/Chicago")), "2026-12"),
])
def test_monthly_schedule_runs_the_previous_month_through_the_graph(tmp_path, env, cron, tick, month):
    defs = build_defs(settings_for(tmp_path, **env))
    schedule = defs.resolve_schedule_def("monthly_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == (cron, "America/Chicago")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "monthly_assets_job"
    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert [r.partition_key for r in result.run_requests] == [month]


def test_bad_schedule_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="CRIME_SCHEDULE_DAY: Input should be less than or equal to 28 .got .31.."):
        settings_for(tmp_path, CRIME_SCHEDULE_DAY="31")
    with pytest.raises(ValueError, match="CRIME_SENSOR_INTERVAL_SECONDS"):
        settings_for(tmp_path, CRIME_SENSOR_INTERVAL_SECONDS="soon")


# -- downstream automation on the real graph ---------------------------------------------------------------------


def test_policy_covers_every_monthly_asset_downstream_of_raw_incidents(tmp_path):
    defs = build_defs(settings_for(tmp_path))
    graph = defs.resolve_asset_graph()
    labels = {k.to_user_string(): (graph.get(k).automation_condition.get_label()
                                   if graph.get(k).automation_condition else None)
              for k in graph.get_all_asset_keys()}
    downstream = dg.AssetSelection.assets("raw_incidents").downstream(include_self=False).resolve(graph)
    monthly = {k.to_user_string() for k in downstream if graph.get(k).partitions_def is not None}
    assert {"incidents_enriched", "h3_monthly_stats", "h3_daily_counts", "h3_cell_labels", "hotspots",
            "hotspot_maps", "arrest_features", "drift_report"} <= monthly
    assert {k for k, v in labels.items() if v == "monthly_rematerialisation"} == monthly
    assert labels["raw_incidents"] is None and labels["police_stations"] == "materialise_when_missing"
    assert labels["champion_model"] == "promote_when_cleared"
    assert labels["arrest_model"] is None and labels["model_backtest"] is None
    sensor = defs.resolve_sensor_def("downstream_automation_sensor")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.asset_selection.resolve(graph) == {dg.AssetKey(k) for k in monthly | {"police_stations", "champion_model"}}


def test_the_graph_declares_the_history_and_the_champion_it_reads(tmp_path):
    graph = build_defs(settings_for(tmp_path)).resolve_asset_graph()
    window = graph.get(dg.AssetKey("arrest_features")).partition_mappings[dg.AssetKey("incidents_enriched")]
    assert (window.start_offset, window.end_offset, window.allow_nonexistent_upstream_partitions) == (-12, 0, True)
    window = graph.get(dg.AssetKey("hotspots")).partition_mappings[dg.AssetKey("h3_monthly_stats")]
    assert (window.start_offset, window.end_offset) == (-12, 0)
    assert graph.get(dg.AssetKey("hotspot_maps")).parent_keys == {dg.AssetKey("hotspots"), dg.AssetKey("h3_monthly_stats")}
    assert dg.AssetKey("champion_model") in graph.get(dg.AssetKey("drift_report")).parent_keys
    # *drift_report reaches everything drift_report needs, the stations included.
    needed = dg.AssetSelection.from_string("*drift_report").resolve(graph)
    assert {k.to_user_string() for k in needed} == {
        "police_stations", "raw_incidents", "incidents_enriched", "arrest_features", "arrest_model",
        "champion_model", "drift_report"}


@pytest.fixture
def automation_env(tmp_path):
    """Settings over a small export (3,000 real rows of each of March-May 2016, and 400 of October 2016
    moved to the newest month) and a fresh instance with the police stations loaded."""
    exports = tmp_path / "exports"
    write_export(exports / "crimes_2016_spring.csv",
                 pd.concat([sample_rows(m, 3000) for m in ("2016-03", "2016-04", "2016-05")]))
    write_export(exports / f"crimes_{NEWEST}.csv", redated(sample_rows("2016-10", 400), NEWEST))
    settings = settings_for(tmp_path / "data", CRIME_EXPORT_PATH=str(exports))
    with dg.instance_for_test() as instance:
        materialize_months(["police_stations"], None, None, settings, instance=instance)
        yield settings, instance


def requested(result) -> dict[str, list[str]]:
    """Asset -> the partitions this evaluation requested (assets with none left out)."""
    keys = {r.key for r in result.results if isinstance(r.key, dg.AssetKey)}
    return {k.to_user_string(): sorted(result.get_requested_partitions(k)) for k in keys
            if result.get_requested_partitions(k)}


def evaluate(defs, instance, previous=None):
    return dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=CLOCK,
                                             cursor=previous.cursor if previous else None)


def test_a_changed_month_rematerialises_its_downstream_once_for_the_latest_and_an_old_month(automation_env):
    settings, instance = automation_env
    defs = build_defs(settings)
    tick = evaluate(defs, instance)
    assert tick.total_requested == 0  # stations present, no month loaded: nothing to do

    for month in (NEWEST, "2016-04"):
        materialize_months(["raw_incidents"], month, None, settings, instance=instance)  # e.g. the sensor's run
        tick = evaluate(defs, instance, tick)
        assert requested(tick) == {asset: [month] for asset in DOWNSTREAM}
        tick = evaluate(defs, instance, tick)
        assert tick.total_requested == 0  # requested once, not again on the next evaluation

    # The requested chain as one run (what the automation sensor launches): its own materialisations
    # do not trigger anything more.
    materialize_months(DOWNSTREAM, "2016-04", None, settings, instance=instance)
    tick = evaluate(defs, instance, tick)
    assert tick.total_requested == 0
    assert query(settings, "SELECT month, count(*) FROM incidents_enriched GROUP BY 1") == [("2016-04", 3000)]

    # A month that was loaded together with its downstream (a backfill, the schedule) is not rerun; the
    # history readers of the month after it, built before it, are (they read March as it was then), and
    # April's maps, drawn from April's hotspots.
    materialize_months(["raw_incidents", *DOWNSTREAM], "2016-03", None, settings, instance=instance)
    tick = evaluate(defs, instance, tick)
    assert requested(tick) == {"arrest_features": ["2016-04"], "hotspots": ["2016-04"], "hotspot_maps": ["2016-04"]}
    assert evaluate(defs, instance, tick).total_requested == 0


def test_a_failed_blocking_check_upstream_holds_back_that_month_only(automation_env):
    settings, instance = automation_env
    defs = build_defs(settings)
    tick = evaluate(defs, instance)

    # 2016-01 is in no export file: raw_incidents loads an empty month and month_not_empty fails (ERROR).
    failed = materialize_months(["raw_incidents"], "2016-01", None, settings, instance=instance, raise_on_error=False)
    assert not failed.success
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("raw_incidents"), "month_not_empty")])
    assert not next(iter(check.values())).evaluation.passed
    tick = evaluate(defs, instance, tick)
    assert tick.total_requested == 0

    # A good month afterwards runs; the empty one is still held back (its own checks failed).
    materialize_months(["raw_incidents"], "2016-05", None, settings, instance=instance)
    tick = evaluate(defs, instance, tick)
    assert requested(tick) == {asset: ["2016-05"] for asset in DOWNSTREAM}
    for _ in range(2):
        tick = evaluate(defs, instance, tick)
        assert tick.total_requested == 0


def test_the_automation_sensor_turns_a_ranged_backfill_into_one_backfill_of_the_downstream_months(automation_env):
    """A person backfills raw_incidents for three months in one run: the sensor (evaluated as the daemon
    does, in the code server) requests one backfill of every downstream asset for those months."""
    settings, instance = automation_env
    defs = build_defs(settings)
    sensor = defs.resolve_sensor_def("downstream_automation_sensor")

    def tick(cursor=None):
        with at_clock():
            return sensor.evaluate_tick(dg.build_sensor_context(
                instance=instance, definitions=defs, resources=dict(defs.resources), cursor=cursor))

    first = tick()
    assert not first.run_requests
    materialize_months(["raw_incidents"], "2016-03", "2016-05", settings, instance=instance)
    second = tick(first.cursor)
    [backfill] = second.run_requests
    assert backfill.requires_backfill_daemon()
    subsets = backfill.asset_graph_subset.partitions_subsets_by_asset_key
    assert {k.to_user_string(): sorted(subsets[k].get_partition_keys()) for k in subsets} == {
        a: ["2016-03", "2016-04", "2016-05"] for a in DOWNSTREAM}
    assert not tick(second.cursor).run_requests


def test_the_stations_are_loaded_once_when_missing(tmp_path):
    settings = settings_for(tmp_path)
    defs = build_defs(settings)
    with dg.instance_for_test() as instance:
        tick = evaluate(defs, instance)
        assert tick.total_requested == tick.get_num_requested(dg.AssetKey("police_stations")) == 1
        assert evaluate(defs, instance, tick).total_requested == 0


# -- history readers and drift_report ------------------------------------------------------------------------------

SPAN = ["2016-03", "2016-04", "2016-05", "2016-06"]
LATER = SPAN[1:]  # the months whose history (arrest_features: 12 months of enriched; hotspots: 12 of H3) holds March


@pytest.fixture
def history_env(tmp_path):
    """Four consecutive months (1,500 real rows each of March-June 2016) loaded with their whole downstream
    in one ranged run, as a backfill does, in a fresh instance with the police stations."""
    exports = tmp_path / "exports"
    write_export(exports / "crimes_2016_spring.csv", pd.concat([sample_rows(m, 1500) for m in SPAN]))
    settings = settings_for(tmp_path / "data", CRIME_EXPORT_PATH=str(exports))
    with dg.instance_for_test() as instance:
        materialize_months(["police_stations"], None, None, settings, instance=instance)
        assert materialize_months(["raw_incidents", *DOWNSTREAM], SPAN[0], SPAN[-1], settings, instance=instance).success
        yield settings, instance


def test_reloading_an_old_month_rebuilds_the_history_readers_of_the_months_after_it_once(history_env):
    settings, instance = history_env
    defs = build_defs(settings)
    tick = evaluate(defs, instance)
    assert tick.total_requested == 0  # loaded in one run: every month was built after what it reads

    # March is reloaded (its checks pass): its chain, and in the same request the features, hotspots and
    # maps of every later month whose history holds March (one run: March is rebuilt first).
    materialize_months(["raw_incidents"], "2016-03", None, settings, instance=instance)
    tick = evaluate(defs, instance, tick)
    assert requested(tick) == {**{asset: ["2016-03"] for asset in DOWNSTREAM},
                               "arrest_features": SPAN, "hotspots": SPAN, "hotspot_maps": SPAN}
    for _ in range(2):  # not again while the requested run is pending (or after it failed)
        tick = evaluate(defs, instance, tick)
        assert tick.total_requested == 0

    # Once they are rebuilt (one run), nothing more.
    materialize_months(DOWNSTREAM, SPAN[0], SPAN[-1], settings, instance=instance)
    tick = evaluate(defs, instance, tick)
    assert tick.total_requested == 0
    assert query(settings, "SELECT min(history_last_month) FROM arrest_features WHERE month = '2016-04'") == [("2016-03",)]


def test_a_history_month_whose_blocking_checks_failed_holds_back_the_months_after_it(history_env):
    settings, instance = history_env
    defs = build_defs(settings)
    tick = evaluate(defs, instance)

    # March's enrichment is rebuilt and fails a blocking gate (every station "too far"): nothing follows,
    # neither March's own downstream nor the later months reading its history.
    failed = materialize_months(["incidents_enriched"], "2016-03", None, settings, instance=instance,
                                raise_on_error=False, resources={"quality": QualityGates(max_station_distance_m=1.0)})
    assert not failed.success
    assert instance.fetch_materializations(dg.AssetRecordsFilter(  # materialised, then stopped by the gate
        asset_key=dg.AssetKey("incidents_enriched"), asset_partitions=["2016-03"]), limit=2).records
    for _ in range(2):
        tick = evaluate(defs, instance, tick)
        assert tick.total_requested == 0

    # Rebuilt with its gates passing: March's downstream, and the later months that read enriched March
    # (features) or its H3 statistics, requested in the same tick (hotspots and maps).
    materialize_months(["incidents_enriched"], "2016-03", None, settings, instance=instance)
    tick = evaluate(defs, instance, tick)
    assert requested(tick) == {
        **{asset: ["2016-03"] for asset in DOWNSTREAM if asset != "incidents_enriched"},
        "arrest_features": SPAN, "hotspots": SPAN, "hotspot_maps": SPAN,
    }


def test_drift_report_follows_its_month_once_a_champion_exists(automation_env):
    settings, instance = automation_env
    defs = build_defs(settings)
    tick = evaluate(defs, instance)

    # No champion: a month's chain runs without its drift report.
    materialize_months(["raw_incidents"], "2016-04", None, settings, instance=instance)
    tick = evaluate(defs, instance, tick)
    assert requested(tick) == {asset: ["2016-04"] for asset in DOWNSTREAM}
    materialize_months(DOWNSTREAM, "2016-04", None, settings, instance=instance)
    for _ in range(2):
        tick = evaluate(defs, instance, tick)
        assert tick.total_requested == 0

    # A champion is promoted: the drift report of the month with features follows, once.
    instance.report_runless_asset_event(dg.AssetMaterialization("champion_model"))
    tick = evaluate(defs, instance, tick)
    assert requested(tick) == {"drift_report": ["2016-04"]}
    tick = evaluate(defs, instance, tick)
    assert tick.total_requested == 0

    # A later champion does not rebuild the reports of every month; a reloaded month brings its drift
    # report along with its chain, in the same request.
    instance.report_runless_asset_event(dg.AssetMaterialization("champion_model"))
    assert evaluate(defs, instance, tick).total_requested == 0
    materialize_months(["raw_incidents"], "2016-05", None, settings, instance=instance)
    tick = evaluate(defs, instance, tick)
    assert requested(tick) == {asset: ["2016-05"] for asset in [*DOWNSTREAM, "drift_report"]}


# -- the checks condition on a tiny graph -------------------------------------------------------------------------

months = dg.MonthlyPartitionsDefinition(start_date="2020-01", fmt="%Y-%m", end_offset=0)


@dg.asset(partitions_def=months, check_specs=[dg.AssetCheckSpec("gate", asset="upstream", blocking=True)])
def upstream(context):
    """A month whose gate fails (ERROR) in January, warns in February, passes otherwise."""
    severity = dg.AssetCheckSeverity.WARN if context.partition_key == "2020-02" else dg.AssetCheckSeverity.ERROR
    return dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name="gate", passed=context.partition_key not in ("2020-01", "2020-02"),
                            severity=severity)])


@dg.asset(partitions_def=months, deps=[upstream],
          automation_condition=monthly_rematerialisation(dg.AssetSelection.assets()))
def downstream():
    """Built from upstream's month."""


def test_blocking_checks_are_judged_per_month_and_warnings_do_not_block():
    with dg.instance_for_test() as instance:
        tick = dg.evaluate_automation_conditions(defs=[upstream, downstream], instance=instance)
        for month in ("2020-01", "2020-02", "2020-03"):
            dg.materialize([upstream], partition_key=month, instance=instance, raise_on_error=False)
        tick = dg.evaluate_automation_conditions(defs=[upstream, downstream], instance=instance, cursor=tick.cursor)
        assert tick.get_requested_partitions(dg.AssetKey("downstream")) == {"2020-02", "2020-03"}


def public_eager_for_every_month() -> dg.AutomationCondition:
    """What Dagster offers ready-made: eager() for every month, gated on the upstream blocking checks."""
    return (dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
            & dg.AutomationCondition.all_deps_blocking_checks_passed())


@dg.asset(partitions_def=months, deps=[upstream], automation_condition=public_eager_for_every_month())
def downstream_public():
    """Built from upstream's month, automated with Dagster's built-in checks condition."""


@pytest.mark.parametrize("order", [("2020-01", "2020-02", "2020-03"), ("2020-03", "2020-02", "2020-01")])
def test_dagsters_all_deps_blocking_checks_passed_judges_every_month_by_the_latest_check(order):
    """Why the policy keeps a condition of its own: unpartitioned checks on a monthly asset (every check
    here; a range of months in one run has one evaluation per check) are judged by their latest execution,
    whatever month it was, and a WARN counts as a failure."""
    assets = [upstream, downstream, downstream_public]
    with dg.instance_for_test() as instance:
        tick = dg.evaluate_automation_conditions(defs=assets, instance=instance)
        for month in order:
            dg.materialize([upstream], partition_key=month, instance=instance, raise_on_error=False)
        tick = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=tick.cursor)
        ours = tick.get_requested_partitions(dg.AssetKey("downstream"))
        public = tick.get_requested_partitions(dg.AssetKey("downstream_public"))
    assert ours == {"2020-02", "2020-03"}  # January's ERROR holds January back, February's WARN does not
    if order[-1] == "2020-03":  # the last check passed: January is built on a month that failed its gate
        assert public == {"2020-01", "2020-02", "2020-03"}
    else:  # the last check failed: every month is held back, March with it
        assert public == set()


# -- issue 22: months present upstream but never followed downstream -----------------------------------------------


def test_months_loaded_before_the_first_evaluation_or_while_it_was_off_are_followed_once(automation_env):
    settings, instance = automation_env
    defs = build_defs(settings)
    # Before the automation ever ran: April's raw month alone; March's whole chain, then March's raw again.
    materialize_months(["raw_incidents"], "2016-04", None, settings, instance=instance)
    materialize_months(["raw_incidents", *DOWNSTREAM], "2016-03", None, settings, instance=instance)
    materialize_months(["raw_incidents"], "2016-03", None, settings, instance=instance)
    tick = evaluate(defs, instance)
    # April was never built downstream; March's downstream is older than its raw month: both, once, and
    # the history readers of April (which read March).
    assert requested(tick) == {asset: ["2016-03", "2016-04"] for asset in DOWNSTREAM}
    for _ in range(2):
        tick = evaluate(defs, instance, tick)
        assert tick.total_requested == 0

    # The automation is stopped (no evaluation) while May is loaded; its next evaluation, from the cursor
    # it had, follows May once.
    stopped = tick
    materialize_months(["raw_incidents"], "2016-05", None, settings, instance=instance)
    materialize_months(["police_stations"], None, None, settings, instance=instance)  # an input refreshed meanwhile
    tick = evaluate(defs, instance, stopped)
    assert requested(tick) == {asset: ["2016-05"] for asset in DOWNSTREAM}
    assert evaluate(defs, instance, tick).total_requested == 0


def test_a_fresh_warehouse_needs_no_history_for_its_first_month(automation_env):
    """The first month of a warehouse has no earlier months: the history readers are built anyway."""
    settings, instance = automation_env
    defs = build_defs(settings)
    materialize_months(["raw_incidents", "incidents_enriched", "h3_monthly_stats", "h3_cell_labels"], "2016-03",
                       None, settings, instance=instance)
    tick = evaluate(defs, instance)
    assert requested(tick) == {"h3_daily_counts": ["2016-03"], "arrest_features": ["2016-03"],
                               "hotspots": ["2016-03"], "hotspot_maps": ["2016-03"]}


# -- no storms: 300 months in one run become one request --------------------------------------------------------------

CENTURY = dg.MonthlyPartitionsDefinition(start_date="2001-01", fmt="%Y-%m", timezone="America/Chicago", end_offset=0)
SINGLE_RUN = dg.BackfillPolicy.single_run()


@dg.asset(partitions_def=CENTURY, backfill_policy=SINGLE_RUN,
          check_specs=[dg.AssetCheckSpec("gate", asset="source_months", blocking=True)])
def source_months(context):
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="gate", passed=True)])


@dg.asset(partitions_def=CENTURY, backfill_policy=SINGLE_RUN, deps=[source_months],
          automation_condition=monthly_rematerialisation(dg.AssetSelection.assets()))
def built_months():
    """Built from source_months' month."""


@dg.asset(partitions_def=CENTURY, backfill_policy=SINGLE_RUN,
          deps=[dg.AssetDep(built_months, partition_mapping=dg.TimeWindowPartitionMapping(
              -12, 0, allow_nonexistent_upstream_partitions=True))],
          automation_condition=monthly_rematerialisation(dg.AssetSelection.assets()))
def history_months():
    """Built from months M-12..M of built_months."""


def test_a_backfill_of_300_months_becomes_one_backfill_downstream():
    assets = [source_months, built_months, history_months]
    sensor = dg.AutomationConditionSensorDefinition("sensor", target=dg.AssetSelection.assets(built_months, history_months),
                                                    use_user_code_server=True)
    defs = dg.Definitions(assets=assets, sensors=[sensor])
    with dg.instance_for_test() as instance:
        def tick(cursor=None):
            with at_clock():
                return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor))

        first = tick()
        assert not first.run_requests
        dg.materialize([source_months], instance=instance, tags={  # one ranged run, as the CLI makes it
            "dagster/asset_partition_range_start": "2001-01", "dagster/asset_partition_range_end": "2025-12"})
        second = tick(first.cursor)
        [backfill] = second.run_requests
        subsets = backfill.asset_graph_subset.partitions_subsets_by_asset_key
        assert {k.to_user_string(): len(subsets[k]) for k in subsets} == {"built_months": 300, "history_months": 300}
        assert not tick(second.cursor).run_requests
