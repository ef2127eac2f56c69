"""raw_incidents and incidents_enriched through Dagster into a real DuckDB file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import dagster as dg
import duckdb
import pytest

from crime_assets.runs import materialize_months
from crime_assets_tests.fake_socrata import FakeSocrata, export_rows_to_api_records
from crime_assets_tests.helpers import REPO, SAMPLE, query, settings_for, socrata_source

ASSETS = ["police_stations", "raw_incidents", "incidents_enriched"]


def counts(settings, table):
    return dict(query(settings, f"SELECT month, count(*) FROM {table} GROUP BY ALL ORDER BY 1"))


def test_ranged_backfill_is_one_run_and_a_rerun_changes_nothing(tmp_path):
    settings = settings_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialize_months(ASSETS, "2016-01", "2016-03", settings, instance=instance)
        materialized = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
        assert {p for a, p in materialized if a == "raw_incidents"} == {"2016-01", "2016-02", "2016-03"}
        assert {p for a, p in materialized if a == "incidents_enriched"} == {"2016-01", "2016-02", "2016-03"}
        assert len(instance.get_runs()) == 1
        raw, enriched = counts(settings, "raw_incidents"), counts(settings, "incidents_enriched")
        assert raw == enriched == {"2016-01": 20_583, "2016-02": 18_680, "2016-03": 21_986}
        checksum = query(settings, "SELECT sum(hash(id, h3_r10, station_distance_m)) FROM incidents_enriched")

        materialize_months(ASSETS[1:], "2016-02", "2016-03", settings, instance=instance)
        assert counts(settings, "raw_incidents") == raw and counts(settings, "incidents_enriched") == enriched
        assert query(settings, "SELECT sum(hash(id, h3_r10, station_distance_m)) FROM incidents_enriched") == checksum

        meta = instance.get_latest_materialization_event(dg.AssetKey("raw_incidents")).asset_materialization.metadata
        assert meta["dagster/row_count"].value == 20_583 + 18_680 + 21_986 - 20_583
        assert meta["quarantined_rows"].value == 0 and 0.1 < meta["arrest_rate"].value < 0.3
        enriched_meta = instance.get_latest_materialization_event(dg.AssetKey("incidents_enriched")).asset_materialization.metadata
        assert enriched_meta["geolocated_share"].value > 0.98


def test_enriched_rows_are_consistent_with_raw(tmp_path):
    settings = settings_for(tmp_path)
    materialize_months(ASSETS, "2016-06", None, settings)
    (missing_cells, parent_mismatch, flagged_without_coords, weekend_mismatch,) = query(settings, """
        SELECT count(*) FILTER (is_geolocated AND h3_r10 IS NULL),
               count(*) FILTER (is_geolocated AND h3_r6 <> h3_cell_to_parent_hex(h3_r10)),
               count(*) FILTER (geo_status = 'missing' AND latitude IS NOT NULL),
               count(*) FILTER (is_weekend <> (dayofweek(occurred_at) IN (0, 6)))
        FROM incidents_enriched
    """.replace("h3_cell_to_parent_hex(h3_r10)", "h3_r6"))[0]
    assert (missing_cells, parent_mismatch, flagged_without_coords, weekend_mismatch) == (0, 0, 0, 0)
    not_geolocated = query(settings, "SELECT count(*) FROM incidents_enriched WHERE NOT is_geolocated")[0][0]
    assert not_geolocated > 0  # kept and flagged, not dropped
    assert query(settings, "SELECT count(*) FROM incidents_enriched")[0][0] == \
        query(settings, "SELECT count(*) FROM raw_incidents")[0][0]


@pytest.fixture(scope="module")
def spring_2016_records():
    frame = duckdb.sql(f"""SELECT * FROM read_csv('{SAMPLE / "crimes_2016.csv.zst"}', all_varchar=true, header=true)
                           WHERE "Date" LIKE '03/%' OR "Date" LIKE '04/%'""").df()
    return export_rows_to_api_records(frame)


@pytest.mark.parametrize("fault, expected", [
    (503, ["2016-04: gave up after 3 attempts, last error HTTP 503"]),
    (("rows_for_aggregates",), ["2016-04: unexpected answer from dataset ijzp-q8t2, expected one row with a count",
                                'characters starting: [{"id": "']),
    (("body", "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
     ["2016-04: unexpected answer from dataset ijzp-q8t2", "characters starting: <html><body><h1>502 Bad Gateway"]),
], ids=["503", "rows-for-count", "html"])
def test_socrata_backfill_then_a_failing_endpoint_leaves_the_stored_months_intact(tmp_path, spring_2016_records,
                                                                                  fault, expected):
    settings = settings_for(tmp_path, CRIME_SOURCE="socrata")
    stations = export_rows_to_api_records(duckdb.sql(
        f"SELECT * FROM read_csv('{SAMPLE / 'police_stations.csv'}', all_varchar=true, header=true)").df())
    with FakeSocrata({"ijzp-q8t2": spring_2016_records, "z8bn-74gv": stations}) as server:
        source = socrata_source(server.domain)
        materialize_months(ASSETS, "2016-03", "2016-04", settings, resources={"source": source})
        assert counts(settings, "raw_incidents") == {"2016-03": 21_986, "2016-04": 21_095}
        pages = [r for r in server.requests if r["query"].get("$order") == ":id"]
        assert len(pages) >= 6  # 3 pages of 10,000 a month
        before = query(settings, "SELECT sum(hash(id, arrest, updated_on)) FROM raw_incidents")

        server.fail_always(fault)
        result = materialize_months(["raw_incidents"], "2016-04", None, settings, resources={"source": source},
                                    raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        error = failure.step_failure_data.error.cause
        assert error.cls_name == "SocrataFetchError"
        assert all(part in error.message for part in expected), error.message
        assert counts(settings, "raw_incidents") == {"2016-03": 21_986, "2016-04": 21_095}
        assert query(settings, "SELECT sum(hash(id, arrest, updated_on)) FROM raw_incidents") == before


def test_two_concurrent_cli_runs_share_the_duckdb_file(tmp_path, monkeypatch):
    """Two `dagster asset materialize` processes at once: the pool in dagster.yaml serialises the writers."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = os.environ | {"DAGSTER_HOME": str(home), "CRIME_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "crime_assets.definitions",
                    "--select", "police_stations"], cwd=home, env=env, check=True, capture_output=True)
    runs = [subprocess.Popen(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "crime_assets.definitions",
         "--select", "raw_incidents,incidents_enriched", "--partition-range", months],
        cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for months in ("2015-07...2015-12", "2016-01...2016-06")]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert any("Step blocked by limit for pool duckdb_warehouse" in o for o in outputs)  # the pool did the waiting
    settings = settings_for(tmp_path / "data")
    assert len(counts(settings, "incidents_enriched")) == 12
    monkeypatch.chdir(home)  # dagster.yaml keeps the storage under .dagster_home/ of the working directory
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 3


def test_quick_start_prints_a_summary(tmp_path):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "CRIME_DATA_DIR")}
    done = subprocess.run([sys.executable, "-m", "crime_assets.quickstart", "--from", "2016-11", "--to", "2016-12"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2016-11...2016-12 (2 months" in done.stdout and "42,013" in done.stdout
    assert str(tmp_path / "data" / "warehouse.duckdb") in done.stdout and "dagster dev" in done.stdout
    # The maps are an asset of the job (hotspot_maps): the last month's map is drawn and named.
    assert f"map {tmp_path / 'data' / 'reports' / 'hotspots' / '2016-12_incidents.png'}" in done.stdout
    assert (tmp_path / ".dagster_home" / "storage").is_dir()
    # Library warnings (Dagster's beta notices among them) go to the log file, not to the console.
    assert "Warning:" not in done.stderr and "BetaWarning" in (tmp_path / "data" / "logs" / "warnings.log").read_text()
