"""The production profile (deploy/dagster.prod.yaml) against a real PostgreSQL server on loopback.

The instance is the production file as it is, with the connection and its password in DAGSTER_PG_*
variables, and the warehouse is the production one: DuckLake, its catalog in the same server. A ranged
CLI materialisation, then the daemon: every sensor of defs ticks, and the real
new_data_sensor finds a new month in the export folder and requests it; the queued run coordinator
hands the run to the daemon, which launches it. Runs, events, check results, ticks, cursors and the
DuckDB pool must all be in PostgreSQL (read back with plain SQL), and nothing in SQLite.
"""

from __future__ import annotations

import subprocess
from collections import Counter

import dagster as dg
import pandas as pd
import pytest
# Registers TickData and InstigatorState with Dagster's deserialiser (the tables hold them serialised).
from dagster._core.scheduler.instigation import InstigatorState, TickData

from crime_assets.definitions import defs
from crime_assets_tests.helpers import REPO, sample_rows, write_export
from crime_assets_tests.servers import (
    dagster_bin, dagster_env, dagster_services, fresh_dagster_home, postgres_server,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROD_CONFIG = REPO / "deploy" / "dagster.prod.yaml"
ASSETS = ["police_stations", "raw_incidents", "incidents_enriched"]
MONTHS = ["2016-01", "2016-02"]
NEW_MONTH = "2015-10"  # published while the daemon runs: a past month, so the test holds on any date
WAIT_S = 150
DONE = ("SUCCESS", "FAILURE", "CANCELED")


def running_sensors() -> list[str]:
    """The sensors of defs that a fresh deployment runs without anyone switching them on."""
    return sorted(s.name for s in defs.sensors if s.default_status == dg.DefaultSensorStatus.RUNNING)


def in_step_checks(asset: str) -> set[str]:
    return {spec.name for spec in defs.get_assets_def(asset).check_specs}


def rows(pg, sql: str, params=()) -> list[tuple]:
    with pg.connect() as con, con.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def sensor_ticks(pg) -> dict[str, list[dict]]:
    """Ticks by sensor name, from the schedule storage's job_ticks table."""
    ticks: dict[str, list[dict]] = {}
    for status, body in rows(pg, "SELECT status, tick_body FROM job_ticks WHERE type = 'SENSOR' ORDER BY id"):
        data = dg.deserialize_value(body, TickData)
        ticks.setdefault(data.instigator_name, []).append({"status": status, "run_ids": list(data.run_ids)})
    return ticks


def latest_check_status(pg, run_id: str) -> dict[tuple[str, str], str]:
    """The latest check execution row per (asset, check) of a run, as Dagster reads it. (In a ranged run
    Dagster also leaves one PLANNED row per month and check beside the evaluated one.)"""
    return {(dg.AssetKey.from_db_string(key).to_user_string(), name): status for key, name, status in rows(
        pg, """SELECT DISTINCT ON (asset_key, check_name) asset_key, check_name, execution_status
               FROM asset_check_executions WHERE run_id = %s ORDER BY asset_key, check_name, id DESC""", (run_id,))}


def event_counts(pg, run_id: str) -> Counter:
    return Counter(dict(rows(pg, "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s GROUP BY 1",
                             (run_id,))))


def test_ranged_run_and_sensor_ticks_land_in_postgres(tmp_path, monkeypatch):
    sensors = running_sensors()
    assert "new_data_sensor" in sensors, f"defs runs no new_data_sensor by default: {sensors}"
    events = dg.DagsterEventType
    # The export source: the real incidents of the two months the CLI loads, and 400 real ones of a month
    # the CLI does not load, which new_data_sensor (watching every month) finds new.
    exports = tmp_path / "exports"
    write_export(exports / "crimes_2016_jan_feb.csv", pd.concat([sample_rows(m) for m in MONTHS]))
    write_export(exports / f"crimes_{NEW_MONTH}.csv", sample_rows(NEW_MONTH, 400))

    with postgres_server() as pg:
        home = fresh_dagster_home(tmp_path, PROD_CONFIG)
        # The production warehouse too: DuckLake, its catalog in the same PostgreSQL server.
        env = dagster_env(home, tmp_path / "data", pg.dagster_env() | pg.ducklake_env(tmp_path / "lake") | {
            "CRIME_EXPORT_PATH": str(exports), "CRIME_SENSOR_LOOKBACK_MONTHS": "all"})
        # Secrets only in the environment: the file that configures the instance names the variables.
        assert pg.password not in (home / "dagster.yaml").read_text()

        subprocess.run([dagster_bin("dagster"), "instance", "migrate"], cwd=home, env=env, check=True,
                       capture_output=True, timeout=120)
        done = subprocess.run(
            [dagster_bin("dagster"), "asset", "materialize", "-m", "crime_assets.definitions",
             "--select", ",".join(ASSETS), "--partition-range", f"{MONTHS[0]}...{MONTHS[-1]}"],
            cwd=home, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

        # The daemon, as in production: the sensors of defs tick by themselves.
        with dagster_services(home, env, webserver=False, daemon=True) as daemon:
            def every_sensor_ticked():
                ticks = sensor_ticks(pg)
                finished = {name for name, ts in ticks.items() if any(t["status"] != "STARTED" for t in ts)}
                return ticks if set(sensors) <= finished else None

            ticks = daemon.wait_for(f"a finished tick of each of {sensors}", every_sensor_ticked, WAIT_S, 2.0)
            requested = [r for t in ticks["new_data_sensor"] for r in t["run_ids"]]
            assert len(requested) == 1, ticks["new_data_sensor"]
            sensor_run = requested[0]

            def sensor_run_finished():
                found = rows(pg, "SELECT status FROM runs WHERE run_id = %s", (sensor_run,))
                return found[0][0] if found and found[0][0] in DONE else None

            sensor_run_status = daemon.wait_for("the daemon to run the sensor's request", sensor_run_finished,
                                                WAIT_S, 2.0)
        for name in sensors:
            print(f"{name}: {Counter(t['status'] for t in ticks[name])}")

        # Runs: the CLI's ranged materialisation is ONE run, and it succeeded.
        ranged = rows(pg, """
            SELECT r.run_id, r.status FROM runs r
            JOIN run_tags s ON s.run_id = r.run_id AND s.key = 'dagster/asset_partition_range_start'
            JOIN run_tags e ON e.run_id = r.run_id AND e.key = 'dagster/asset_partition_range_end'
            WHERE s.value = %s AND e.value = %s""", (MONTHS[0], MONTHS[-1]))
        assert len(ranged) == 1 and ranged[0][1] == "SUCCESS", ranged
        run_id = ranged[0][0]

        # Events: one materialisation per month of each monthly asset, and the stations once.
        materialised = rows(pg, """
            SELECT asset_key, partition, count(*) FROM event_logs
            WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY 1, 2""", (run_id,))
        assert {(dg.AssetKey.from_db_string(key).to_user_string(), part, n) for key, part, n in materialised} == \
            {("police_stations", None, 1)} | {(a, m, 1) for a in ASSETS[1:] for m in MONTHS}
        counts = event_counts(pg, run_id)
        assert counts[events.RUN_SUCCESS.value] == 1 and not counts[events.STEP_FAILURE.value], counts

        # Check results: every check the two monthly assets evaluate in their own step, passed. (Other checks
        # on them, such as freshness, may run in the same run too.)
        checks = latest_check_status(pg, run_id)
        print(f"check executions of the ranged run: {checks}")
        expected = {(a, c) for a in ASSETS[1:] for c in in_step_checks(a)}
        assert expected, "the ingestion assets declare no checks"
        assert {key: checks.get(key) for key in expected} == dict.fromkeys(expected, "SUCCEEDED")

        # The sensor's run: requested with a run key, queued, dequeued and launched by the daemon, succeeded,
        # its month materialised and checked.
        tags = dict(rows(pg, "SELECT key, value FROM run_tags WHERE run_id = %s", (sensor_run,)))
        assert tags["dagster/sensor_name"] == "new_data_sensor" and tags["dagster/partition"] == NEW_MONTH, tags
        assert tags["dagster/run_key"].startswith(f"raw_incidents:{NEW_MONTH}:"), tags
        counts = event_counts(pg, sensor_run)
        assert sensor_run_status == "SUCCESS", counts
        assert counts[events.RUN_ENQUEUED.value] == 1 and counts[events.RUN_STARTING.value] == 1, counts
        assert rows(pg, """SELECT partition FROM event_logs WHERE run_id = %s
                           AND dagster_event_type = 'ASSET_MATERIALIZATION'""", (sensor_run,)) == [(NEW_MONTH,)]
        sensor_checks = latest_check_status(pg, sensor_run)
        assert {sensor_checks.get(("raw_incidents", c)) for c in in_step_checks("raw_incidents")} == {"SUCCEEDED"}, \
            sensor_checks

        # Ticks of every sensor, none failed, and their state (cursors) in the instigators table.
        assert all(t["status"] != "FAILURE" for name in sensors for t in ticks[name]), ticks
        stored = {state.origin.instigator_name: state for state in (
            dg.deserialize_value(body, InstigatorState) for (body,) in
            rows(pg, "SELECT instigator_body FROM instigators WHERE instigator_type = 'SENSOR'"))}
        assert set(sensors) <= set(stored)
        assert NEW_MONTH in (stored["new_data_sensor"].instigator_data.cursor or "")

        # The pool of the warehouse's writers lives in PostgreSQL too, with the DuckLake limit of four.
        assert ("duckdb_warehouse", 4) in rows(pg, 'SELECT concurrency_key, "limit" FROM concurrency_limits')
        # The rows are in the lake: Parquet files in its folder, listed by the catalog in PostgreSQL.
        assert rows(pg, "SELECT count(*) FROM ducklake_data_file")[0][0] > 0
        assert list((tmp_path / "lake").rglob("*.parquet"))

        # Nothing fell back to SQLite beside the instance.
        assert not list(home.rglob("*.db")), list(home.rglob("*.db"))

        monkeypatch.chdir(home)
        for name, value in pg.dagster_env().items():
            monkeypatch.setenv(name, value)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert instance.get_run_by_id(run_id).is_success
