"""End to end with `dagster-daemon run`: a month appears at the source and, with no manual step, the
daemon materialises its whole chain (raw -> enriched -> H3 -> hotspots -> maps, features) and every check
passes; a month loaded by hand before the daemon ever ran is followed as well.

The month is a real past month (October 2016) and the sensor watches every month, so the daemon, which
runs on the machine's clock, sees the same partitions on any date."""

from __future__ import annotations

import time

import dagster as dg
import duckdb
import pytest

from crime_assets.definitions import build_defs
from crime_assets_tests.fake_socrata import FakeSocrata, export_rows_to_api_records
from crime_assets.runs import materialize_months
from crime_assets_tests.helpers import SAMPLE, query, sample_rows, settings_for
from crime_assets_tests.servers import dagster_env, dagster_services, fresh_dagster_home
from crime_assets_tests.automation.test_automation import DOWNSTREAM

pytestmark = [pytest.mark.daemon, pytest.mark.slow]

MONTH = "2016-10"
CHAIN = ["raw_incidents", *DOWNSTREAM]
BUDGET_S = 240  # the whole test, daemon start included
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED]


def materialisations(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> list:
    return list(instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=10).records)


def test_a_new_month_at_the_source_is_materialised_through_its_chain_by_the_daemon(tmp_path, monkeypatch):
    started = time.monotonic()
    home, data_dir = fresh_dagster_home(tmp_path), tmp_path / "data"
    stations = export_rows_to_api_records(duckdb.sql(
        f"SELECT * FROM read_csv('{SAMPLE / 'police_stations.csv'}', all_varchar=true, header=true)").df())
    month = export_rows_to_api_records(sample_rows(MONTH, 400))  # 400 real incidents
    # The checks each step of the chain evaluates with its materialisation (time-based freshness checks,
    # evaluated by their own sensor, are not about the month's data).
    defs = build_defs(settings_for(data_dir))
    check_keys = sorted((k for a in CHAIN for k in defs.resolve_assets_def(a).check_keys),
                        key=lambda k: k.to_user_string())

    with FakeSocrata({"ijzp-q8t2": [], "z8bn-74gv": stations}) as server:
        env = dagster_env(home, data_dir, {
            "CRIME_SOURCE": "socrata", "SOCRATA_DOMAIN": server.domain,
            "CRIME_SENSOR_INTERVAL_SECONDS": "5", "CRIME_AUTOMATION_INTERVAL_SECONDS": "5",
            "CRIME_SENSOR_LOOKBACK_MONTHS": "all",
        })
        monkeypatch.chdir(home)  # dagster.yaml keeps the storage under .dagster_home/ of the working directory
        with dagster_services(home, env, webserver=False) as daemon, \
                dg.DagsterInstance.from_config(str(home)) as instance:

            def left() -> float:
                return BUDGET_S - (time.monotonic() - started)

            # A fresh install: the automation sensor loads the missing stations by itself.
            daemon.wait_for("police_stations", lambda: materialisations(instance, "police_stations"), left())
            stations_s = time.monotonic() - started

            server.rows["ijzp-q8t2"] = month  # the month is published
            appeared = time.monotonic()

            def chain_done() -> bool:
                return all(materialisations(instance, a, MONTH) for a in CHAIN) and \
                    not instance.get_runs(dg.RunsFilter(statuses=ACTIVE))

            daemon.wait_for(f"the chain of {MONTH}", chain_done, left())
            chain_s = time.monotonic() - appeared
            time.sleep(min(12.0, max(left() - 5, 0)))  # more ticks of both sensors: nothing may run again
            runs = instance.get_runs()
            latest_checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
            counts = {a: len(materialisations(instance, a, MONTH)) for a in CHAIN}

    print(f"\nstations {stations_s:.0f} s after start; chain of {MONTH} {chain_s:.0f} s after it appeared; "
          f"{len(runs)} runs: {[(r.tags.get('dagster/sensor_name'), r.status.value) for r in runs]}")
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]
    assert counts == dict.fromkeys(CHAIN, 1)  # each step once: one change, one chain
    raw_runs = [r for r in runs if r.tags.get("dagster/partition") == MONTH and "raw_incidents" in
                {k.to_user_string() for k in r.asset_selection or ()}]
    assert [r.tags.get("dagster/sensor_name") for r in raw_runs] == ["new_data_sensor"]
    downstream_runs = [r for r in runs if r not in raw_runs and r.tags.get("dagster/partition") == MONTH]
    assert {r.tags.get("dagster/sensor_name") for r in downstream_runs} == {"downstream_automation_sensor"}
    assert len(check_keys) >= 10 and set(latest_checks) == set(check_keys)
    not_passed = {k.to_user_string(): r.status for k, r in latest_checks.items()
                  if r.evaluation is None or not r.evaluation.passed}
    assert not not_passed
    settings = settings_for(data_dir)
    assert query(settings, "SELECT month, count(*) FROM incidents_enriched GROUP BY 1") == [(MONTH, 400)]


def test_a_month_loaded_before_the_daemon_first_ran_is_followed_through_its_chain(tmp_path, monkeypatch):
    """Issue 22: raw_incidents of a month materialised by a person on a fresh instance, then the daemon
    started: its first evaluation loads the missing stations, then builds the month's chain, once."""
    started = time.monotonic()
    home, data_dir = fresh_dagster_home(tmp_path), tmp_path / "data"
    stations = export_rows_to_api_records(duckdb.sql(
        f"SELECT * FROM read_csv('{SAMPLE / 'police_stations.csv'}', all_varchar=true, header=true)").df())
    month = export_rows_to_api_records(sample_rows(MONTH, 400))
    with FakeSocrata({"ijzp-q8t2": month, "z8bn-74gv": stations}) as server:
        extra = {"CRIME_SOURCE": "socrata", "SOCRATA_DOMAIN": server.domain, "CRIME_SENSOR_INTERVAL_SECONDS": "5",
                 "CRIME_AUTOMATION_INTERVAL_SECONDS": "5", "CRIME_SENSOR_LOOKBACK_MONTHS": "all"}
        env = dagster_env(home, data_dir, extra)
        monkeypatch.chdir(home)
        with dg.DagsterInstance.from_config(str(home)) as instance:  # what `dagster asset materialize` does
            assert materialize_months(["raw_incidents"], MONTH, None, settings_for(data_dir, **extra),
                                      instance=instance).success
        with dagster_services(home, env, webserver=False) as daemon, \
                dg.DagsterInstance.from_config(str(home)) as instance:

            def chain_done() -> bool:
                return all(materialisations(instance, a, MONTH) for a in CHAIN) and \
                    not instance.get_runs(dg.RunsFilter(statuses=ACTIVE))

            daemon.wait_for(f"the chain of {MONTH}", chain_done, BUDGET_S - (time.monotonic() - started))
            chain_s = time.monotonic() - started
            time.sleep(min(12.0, max(BUDGET_S - (time.monotonic() - started) - 5, 0)))  # more ticks: nothing again
            runs = instance.get_runs()
            counts = {a: len(materialisations(instance, a, MONTH)) for a in CHAIN}

    print(f"\nchain of {MONTH} built {chain_s:.0f} s after the start; {len(runs)} runs: "
          f"{[(r.tags.get('dagster/sensor_name'), r.status.value) for r in runs]}")
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]
    assert counts == dict.fromkeys(CHAIN, 1)  # raw by hand, each downstream step once
    # The stations and the chain came from the automation (the freshness sensor's runs only evaluate checks).
    building = [r for r in runs if r.asset_selection and r.tags.get("dagster/sensor_name")]
    assert {r.tags["dagster/sensor_name"] for r in building} == {"downstream_automation_sensor"}
    assert {k.to_user_string() for r in building for k in r.asset_selection} == {"police_stations", *DOWNSTREAM}
    assert query(settings_for(data_dir), "SELECT month, count(*) FROM incidents_enriched GROUP BY 1") == [(MONTH, 400)]
    assert (data_dir / "reports" / "hotspots" / f"{MONTH}_incidents.png").is_file()
