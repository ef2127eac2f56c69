"""The quality gates on raw_incidents and incidents_enriched, on real months made bad on purpose."""

from __future__ import annotations

import duckdb
import dagster as dg
import pytest

from crime_assets.common.months import MonthWindow
from crime_assets.ingestion.quality import Thresholds, raw_incident_gates
from crime_assets.ingestion.raw_load import ensure_raw_tables
from crime_assets.runs import materialize_months
from crime_assets_tests.helpers import SAMPLE, settings_for


@pytest.fixture(scope="module")
def spring_export(tmp_path_factory):
    """Real rows of 2015-07...2016-04 as one export file, and a way to write altered copies of it."""
    folder = tmp_path_factory.mktemp("spring")
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE rows AS SELECT * FROM read_csv('{SAMPLE / "crimes_2015.csv.zst"}', all_varchar=true, header=true)
                    WHERE strptime("Date", '%m/%d/%Y %I:%M:%S %p') >= '2015-07-01'
                    UNION ALL
                    SELECT * FROM read_csv('{SAMPLE / "crimes_2016.csv.zst"}', all_varchar=true, header=true)
                    WHERE strptime("Date", '%m/%d/%Y %I:%M:%S %p') < '2016-05-01'""")

    def write(name: str, april_sql: str = "SELECT * FROM april") -> str:
        path = folder / f"{name}.csv"
        con.execute(f"""COPY (
            WITH april AS (SELECT * FROM rows WHERE "Date" LIKE '04/%/2016%')
            SELECT * FROM rows WHERE "Date" NOT LIKE '04/%/2016%' UNION ALL ({april_sql})
        ) TO '{path}' (HEADER)""")
        return str(path)
    return write


def run_april(spring_export, tmp_path, april_sql):
    settings = settings_for(tmp_path, CRIME_EXPORT_PATH=spring_export("good"))
    materialize_months(["police_stations", "raw_incidents", "incidents_enriched"], "2015-07", "2016-03", settings)
    bad = settings_for(tmp_path, CRIME_EXPORT_PATH=spring_export(tmp_path.name, april_sql))
    result = materialize_months(["raw_incidents", "incidents_enriched"], "2016-04", None, bad, raise_on_error=False)
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    return result, checks, materialized


def test_a_collapsed_month_is_stopped_before_enrichment(spring_export, tmp_path):
    result, checks, materialized = run_april(spring_export, tmp_path, "SELECT * FROM april USING SAMPLE 5 PERCENT (bernoulli, 1)")
    assert not result.success
    assert not checks["volume_within_band"].passed
    assert checks["volume_within_band"].severity == dg.AssetCheckSeverity.ERROR
    assert "2016-04" in checks["volume_within_band"].metadata["summary"].value
    assert materialized == {"raw_incidents"}  # incidents_enriched never ran for the month


def test_a_volume_spike_is_only_a_warning(spring_export, tmp_path):
    doubled = "SELECT * FROM april UNION ALL SELECT * REPLACE ((CAST(\"ID\" AS BIGINT) + 100000000)::VARCHAR AS \"ID\") FROM april"
    result, checks, materialized = run_april(spring_export, tmp_path, doubled)
    assert not checks["volume_within_band"].passed
    assert checks["volume_within_band"].severity == dg.AssetCheckSeverity.WARN
    assert result.success and materialized == {"raw_incidents", "incidents_enriched"}


def test_broken_coordinates_fail_the_geolocation_gate(spring_export, tmp_path):
    broken = """SELECT * REPLACE (CASE WHEN hash("ID") % 4 = 0 THEN '0' ELSE "Latitude" END AS "Latitude") FROM april"""
    result, checks, _ = run_april(spring_export, tmp_path, broken)
    assert all(checks[name].passed for name in checks if name != "geolocated_share_above_threshold")
    assert not checks["geolocated_share_above_threshold"].passed and not result.success


def test_gates_on_an_empty_month_and_on_rows_outside_their_month():
    con = duckdb.connect()
    ensure_raw_tables(con)
    con.execute("""INSERT INTO raw_incidents (id, occurred_at, month)
                   SELECT i, TIMESTAMP '2016-03-05 10:00' , '2016-03' FROM range(100) t(i)""")
    con.execute("INSERT INTO raw_incidents (id, occurred_at, month) VALUES (500, TIMESTAMP '2016-02-28 10:00', '2016-03')")
    con.execute("""INSERT INTO raw_incidents_quarantine (month, reason) SELECT '2016-03', 'date_outside_partition'
                   FROM range(30)""")
    gates = {g.name: g for g in raw_incident_gates(con, MonthWindow.from_keys("2016-02", "2016-03"), Thresholds())}
    assert not gates["month_not_empty"].passed and gates["month_not_empty"].details["empty_months"] == ["2016-02"]
    assert not gates["occurrences_inside_month"].passed
    assert gates["occurrences_inside_month"].details["rows_outside"] == {"2016-03": 1}
    assert not gates["quarantine_share_below_threshold"].passed  # 30 of 131 source rows
    assert gates["ids_are_unique"].passed and gates["required_columns_and_types"].passed
    con.execute("INSERT INTO raw_incidents (id, occurred_at, month) VALUES (7, TIMESTAMP '2016-04-01', '2016-04')")
    assert not {g.name: g for g in raw_incident_gates(con, MonthWindow.from_keys("2016-03"), Thresholds())}[
        "ids_are_unique"].passed  # id 7 also lives under 2016-04
