"""The DuckLake warehouse backend (CRIME_WAREHOUSE=ducklake) against a real PostgreSQL catalog and a data
folder on disk: the same rows as the DuckDB file, readers that neither fail nor block a run and never see
half a month, two runs of different months at once, a run killed with kill -9, and the analyst's
``warehouse.connect`` on both backends.

Runs that must be other processes (a writer beside a reader, two writers, a killed writer) are started
as ``python -c`` subprocesses of ``materialize_months``; the reader is this test's own connection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crime_assets import warehouse
from crime_assets.common.sql import transaction
from crime_assets.defs.common.warehouse_resource import is_commit_conflict
from crime_assets.defs.resources import build_warehouse
from crime_assets.runs import materialize_months
from crime_assets_tests.helpers import REPO, sample_rows, settings_for, write_export
from crime_assets_tests.servers import postgres_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHAIN = ["police_stations", "raw_incidents", "incidents_enriched", "h3_monthly_stats", "h3_daily_counts",
         "h3_cell_labels", "arrest_features"]
TABLES = ["police_stations", "raw_incidents", "raw_incidents_quarantine", "incidents_enriched", "h3_monthly_stats",
          "h3_daily_counts", "h3_cell_labels", "arrest_features"]
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def catalog():
    with postgres_server(db_name="crime_lake", username="crime") as pg:
        yield pg


@pytest.fixture
def lake_env(catalog, tmp_path, monkeypatch) -> dict[str, str]:
    """A DuckLake of its own for each test (a new catalog database would need a superuser, so each test
    empties the catalog's schema instead). The password is also in this process's environment, where the
    resource reads it through EnvVar."""
    with catalog.connect() as con, con.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    env = {"CRIME_DATA_DIR": str(tmp_path / "data"), **catalog.ducklake_env(tmp_path / "lake")}
    monkeypatch.setenv("CRIME_DUCKLAKE_PASSWORD", env["CRIME_DUCKLAKE_PASSWORD"])
    return env


def run_in_subprocess(selection: list[str], first: str, last: str, env: dict[str, str]) -> subprocess.Popen:
    code = ("import sys, warnings; warnings.filterwarnings('ignore')\n"
            "from crime_assets.common.settings import Settings\n"
            "from crime_assets.runs import materialize_months\n"
            f"result = materialize_months({selection!r}, {first!r}, {last!r}, Settings.from_env())\n"
            "sys.exit(0 if result.success else 1)\n")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    return process.returncode, output[-4000:]


def month_counts(con: duckdb.DuckDBPyConnection, table: str = "incidents_enriched") -> dict[str, int]:
    return dict(con.execute(f"SELECT month, count(*) FROM {table} GROUP BY ALL ORDER BY 1").fetchall())


def test_two_months_through_features_give_the_same_rows_as_the_duckdb_file(lake_env, tmp_path):
    file_settings = settings_for(tmp_path / "file")
    lake_settings = settings_for(Path(lake_env["CRIME_DATA_DIR"]), **lake_env)
    for settings in (file_settings, lake_settings):
        assert materialize_months(CHAIN, "2016-01", "2016-02", settings).success

    with warehouse.connect(read_only=True, environ=lake_env) as con:
        con.execute(f"ATTACH '{file_settings.warehouse_path}' AS file_db (READ_ONLY)")
        for table in TABLES:
            lake_rows = con.execute(f"SELECT count(*) FROM lake.{table}").fetchone()[0]
            file_rows = con.execute(f"SELECT count(*) FROM file_db.{table}").fetchone()[0]
            assert lake_rows == file_rows, table
            assert lake_rows > 0 or table == "raw_incidents_quarantine", f"{table} is empty"
            for a, b in (("lake", "file_db"), ("file_db", "lake")):
                extra = con.execute(f"SELECT count(*) FROM (FROM {a}.{table} EXCEPT ALL FROM {b}.{table})").fetchone()[0]
                assert extra == 0, f"{table}: {extra} rows of {a} not in {b}"
        assert month_counts(con, "lake.incidents_enriched") == {"2016-01": 20583, "2016-02": 18680}
    # The files are Parquet in the data folder, readable without DuckLake.
    parquet = list((tmp_path / "lake").rglob("*.parquet"))
    assert parquet and duckdb.sql(f"SELECT count(*) FROM read_parquet('{parquet[0]}')").fetchone()[0] > 0


def test_a_reader_held_open_neither_fails_nor_blocks_a_run_and_sees_whole_months(lake_env, tmp_path):
    settings = settings_for(Path(lake_env["CRIME_DATA_DIR"]), **lake_env)
    assert materialize_months(["police_stations", "raw_incidents", "incidents_enriched"], "2016-02", None,
                              settings).success
    # The run replaces 2016-02 by its first 400 real records.
    exports = write_export(tmp_path / "exports" / "crimes_2016_02.csv", sample_rows("2016-02", 400)).parent
    reader = warehouse.connect(read_only=True, environ=lake_env)
    before = month_counts(reader)
    assert before == {"2016-02": 18680}
    writer = run_in_subprocess(["raw_incidents", "incidents_enriched"], "2016-02", None,
                               {**lake_env, "CRIME_EXPORT_PATH": str(exports)})
    seen, latencies = set(), []
    while writer.poll() is None:
        started = time.perf_counter()
        seen.add(tuple(month_counts(reader).items()))
        latencies.append(time.perf_counter() - started)
    code, output = finished(writer)
    assert code == 0, output
    after = month_counts(reader)  # the same connection, still open, sees the run's commit
    assert after == {"2016-02": 400}
    assert seen <= {tuple(before.items()), tuple(after.items())}, f"a reader saw a half month: {seen}"
    assert max(latencies) < 5, f"a reader waited {max(latencies):.1f} s during the run"
    reader.close()


def test_two_runs_of_different_months_at_the_same_time_both_succeed(lake_env):
    settings = settings_for(Path(lake_env["CRIME_DATA_DIR"]), **lake_env)
    months = ["2016-03", "2016-04"]
    selection = ["raw_incidents", "incidents_enriched", "h3_monthly_stats"]
    # Both months exist first, so each run deletes before it inserts: the case DuckLake judges for conflicts.
    assert materialize_months(["police_stations", *selection], months[0], months[-1], settings).success
    runs = [run_in_subprocess(selection, m, None, lake_env) for m in months]
    outcomes = [run.communicate(timeout=RUN_TIMEOUT_S)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [output[-4000:] for output in outcomes]
    retries = [line[:200] for output in outcomes for line in output.splitlines() if "STEP_UP_FOR_RETRY" in line]
    print(f"{len(retries)} step retries after a commit conflict", *retries, sep="\n")
    with warehouse.connect(read_only=True, environ=lake_env) as con:
        assert month_counts(con) == {m: len(sample_rows(m)) for m in months}
        assert month_counts(con, "raw_incidents") == {m: len(sample_rows(m)) for m in months}
        assert sorted(m for (m,) in con.execute("SELECT DISTINCT month FROM h3_monthly_stats").fetchall()) == months


def test_a_commit_conflict_becomes_a_step_retry_and_rolls_back(lake_env):
    resource = build_warehouse(settings_for(Path(lake_env["CRIME_DATA_DIR"]), **lake_env)).process_config_and_initialize()
    with resource.get_connection() as con:
        con.execute("CREATE TABLE t (month VARCHAR, n INTEGER)")
        con.execute("INSERT INTO t VALUES ('2016-01', 1), ('2016-02', 2)")
    with resource.get_connection() as first, pytest.raises(dg.RetryRequested) as raised:
        first.execute("BEGIN TRANSACTION")
        first.execute("DELETE FROM t WHERE month = '2016-01'")
        first.execute("INSERT INTO t VALUES ('2016-01', 10)")
        with resource.get_connection() as second, transaction(second):
            second.execute("DELETE FROM t WHERE month = '2016-02'")
            second.execute("INSERT INTO t VALUES ('2016-02', 20)")
            first.execute("COMMIT")  # first to commit; the second's COMMIT at the end of the block conflicts
    assert is_commit_conflict(raised.value.__cause__)
    with warehouse.connect(read_only=True, environ=lake_env) as con:
        assert con.execute("SELECT * FROM t ORDER BY month").fetchall() == [("2016-01", 10), ("2016-02", 2)]


def test_a_run_killed_with_kill_9_leaves_no_half_month_visible(lake_env, tmp_path):
    settings = settings_for(Path(lake_env["CRIME_DATA_DIR"]), **lake_env)
    assert materialize_months(["police_stations", "raw_incidents"], "2016-11", "2016-12", settings).success
    with warehouse.connect(read_only=True, environ=lake_env) as con:
        before = month_counts(con, "raw_incidents")
    raw_files = tmp_path / "lake" / "main" / "raw_incidents"
    written = set(raw_files.rglob("*.parquet"))
    # All 24 months in one transaction, a month at a time: files are written long before the commit.
    writer = run_in_subprocess(["raw_incidents"], "2015-01", "2016-12", {**lake_env, "CRIME_CHUNK_MONTHS": "1"})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not set(raw_files.rglob("*.parquet")) - written:
        assert writer.poll() is None and time.monotonic() < deadline, "the run ended before it wrote a file"
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    assert writer.wait(timeout=30) == -signal.SIGKILL
    writer.communicate()
    with warehouse.connect(read_only=True, environ=lake_env) as con:
        assert month_counts(con, "raw_incidents") == before
    # The lake stays writable: the next run replaces the months whole.
    assert materialize_months(["raw_incidents"], "2016-10", "2016-11", settings).success
    with warehouse.connect(read_only=True, environ=lake_env) as con:
        assert month_counts(con, "raw_incidents") == {m: len(sample_rows(m)) for m in ("2016-10", "2016-11", "2016-12")}


@pytest.mark.parametrize("backend", ["duckdb", "ducklake"])
def test_the_analyst_connection_reads_the_gold_tables_on_both_backends(backend, lake_env, tmp_path):
    env = lake_env if backend == "ducklake" else {"CRIME_DATA_DIR": str(tmp_path / "file")}
    with pytest.raises(warehouse.WarehouseMissingError):
        warehouse.connect(read_only=True, environ=env)
    settings = settings_for(Path(env["CRIME_DATA_DIR"]), **env)
    assert materialize_months(["police_stations", "raw_incidents", "incidents_enriched", "h3_monthly_stats"],
                              "2016-06", None, settings).success
    with warehouse.connect(read_only=True, environ=env) as con:
        hottest = con.execute("SELECT h3_cell, incidents FROM h3_monthly_stats WHERE month = '2016-06' AND resolution = 8"
                              " ORDER BY incidents DESC LIMIT 1").fetchone()
        assert hottest[1] > 0
        assert month_counts(con) == {"2016-06": len(sample_rows("2016-06"))}
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM incidents_enriched")
