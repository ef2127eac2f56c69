"""The H3 gold layer through Dagster into a real DuckDB file: one ranged run, re-runs, run config, gates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crime_assets.definitions import build_defs
from crime_assets.runs import materialize_months
from crime_assets_tests.helpers import SAMPLE, query, settings_for

FOUNDATION = ["police_stations", "raw_incidents", "incidents_enriched"]
GOLD = ["h3_monthly_stats", "h3_daily_counts", "h3_cell_labels", "hotspots", "hotspot_maps"]
MONTHS = ["2016-01", "2016-02", "2016-03", "2016-04"]
GOLD_CHECKS = {"cells_sum_to_geolocated_incidents", "children_sum_to_parent", "rates_within_bounds",
               "daily_cells_sum_to_geolocated_incidents", "one_label_per_cell", "hotspot_cells_exist_in_stats"}

# The README's analyst query: a month's busiest cells with their names and how sure their arrest rate is.
ANALYST_QUERY = """
SELECT s.h3_cell, l.label, s.incidents,
       round(s.arrest_rate, 3) AS arrest_rate,
       round(s.arrest_rate_lower, 3) AS lower_95, round(s.arrest_rate_upper, 3) AS upper_95,
       round(s.pooled_arrest_rate, 3) AS pooled_rate, s.is_low_confidence,
       s.dominant_primary_type, s.violent_incidents, s.property_incidents, s.drugs_incidents
FROM h3_monthly_stats AS s
JOIN h3_cell_labels AS l USING (month, resolution, h3_cell)
WHERE s.month = $month AND s.resolution = 8
ORDER BY s.incidents DESC
LIMIT 10
"""


def tables(settings) -> dict[str, list[tuple]]:
    return {t: query(settings, f"SELECT * FROM {t} ORDER BY ALL") for t in
            ("h3_monthly_stats", "h3_daily_counts", "h3_cell_labels", "hotspots")}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.event_specific_data.check_name: e.event_specific_data.passed
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


@pytest.fixture(scope="module")
def gold(tmp_path_factory):
    """Four months through the whole graph in one ranged run; yields (settings, instance, result, tables)."""
    # Only the 2016 export file: the months tested are all in it, and the load reads half as much.
    settings = settings_for(tmp_path_factory.mktemp("gold"), CRIME_EXPORT_PATH=str(SAMPLE / "crimes_2016.csv.zst"))
    with dg.instance_for_test() as instance:
        result = materialize_months(FOUNDATION + GOLD, MONTHS[0], MONTHS[-1], settings, instance=instance)
        yield settings, instance, result, tables(settings)


def test_one_ranged_run_materialises_every_month_and_passes_the_gates(gold):
    settings, instance, result, _ = gold
    assert result.success and len(instance.get_runs()) == 1
    materialized = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
    for asset in GOLD:
        assert {p for a, p in materialized if a == asset} == set(MONTHS), asset
    checks = check_results(result)
    assert GOLD_CHECKS <= set(checks) and all(checks[name] for name in GOLD_CHECKS)
    stats_meta = instance.get_latest_materialization_event(dg.AssetKey("h3_monthly_stats")).asset_materialization.metadata
    assert stats_meta["months"].value == "2016-01...2016-04"
    geolocated = query(settings, "SELECT count(*) FROM incidents_enriched WHERE is_geolocated")[0][0]
    assert stats_meta["geolocated_incidents"].value == geolocated


def test_hotspot_maps_are_saved_and_shown_small_in_the_metadata(gold):
    settings, instance, _, _ = gold
    folder = settings.data_dir / "reports" / "hotspots"
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(
        f"{m}_{kind}.png" for m in MONTHS for kind in ("incidents", "arrest_rate"))
    event = instance.get_latest_materialization_event(dg.AssetKey("hotspot_maps")).asset_materialization
    meta = event.metadata
    assert Path(meta["incidents_map"].value) == folder / "2016-04_incidents.png"
    assert Path(meta["arrest_rate_map"].value) == folder / "2016-04_arrest_rate.png"
    assert meta["maps_preview"].value.count("](data:image/png;base64,") == 2
    # every month of a ranged run carries this metadata: it must stay small
    size = len(json.dumps({k: str(v.value) for k, v in meta.items()}))
    assert size < 40_000, size


def test_months_without_enough_history_get_no_hotspots(gold):
    settings, instance, _, _ = gold
    # 2016-01..03 have 0, 1 and 2 earlier months of statistics (< 3); 2016-04 has three
    assert {m for (m,) in query(settings, "SELECT DISTINCT month FROM hotspots")} <= {"2016-04"}
    meta = instance.get_latest_materialization_event(dg.AssetKey("hotspots")).asset_materialization.metadata
    assert meta["months_not_tested"].value == "2016-01, 2016-02, 2016-03"
    unlabelled = query(settings, "SELECT count(*) FROM hotspots WHERE label IS NULL")[0][0]
    assert unlabelled == 0


def test_the_tables_add_up_to_the_enriched_incidents(gold):
    settings = gold[0]
    for resolution in (6, 8, 10):
        mismatches = query(settings, f"""
            SELECT count(*) FROM (
                SELECT month, count(*) AS n FROM incidents_enriched WHERE is_geolocated GROUP BY month) AS e
            FULL JOIN (SELECT month, sum(incidents) AS n FROM h3_monthly_stats WHERE resolution = {resolution}
                       GROUP BY month) AS s USING (month)
            FULL JOIN (SELECT month, sum(incidents) AS n FROM h3_daily_counts WHERE resolution = {resolution}
                       GROUP BY month) AS d USING (month)
            WHERE e.n IS DISTINCT FROM s.n OR e.n IS DISTINCT FROM d.n""")[0][0]
        assert mismatches == 0, resolution


def test_the_analyst_query_reads_as_places(gold):
    settings = gold[0]
    rows = query(settings, ANALYST_QUERY, {"month": "2016-04"})
    assert len(rows) == 10
    assert all(label and "district" in label for _, label, *_ in rows)
    assert rows[0][2] >= rows[-1][2]


def test_rerunning_part_of_the_range_changes_nothing(gold):
    settings, instance, _, before = gold
    result = materialize_months(GOLD, "2016-02", "2016-03", settings, instance=instance)
    assert result.success and all(check_results(result).values())
    assert tables(settings) == before


def run_with_config(settings, selection: list[str], month: str, run_config: dict, instance, raise_on_error=True):
    defs = build_defs(settings)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(dg.AssetSelection.assets(*selection).resolve(defs.resolve_asset_graph())))
    return job.execute_in_process(instance=instance, partition_key=month, run_config=run_config,
                                  raise_on_error=raise_on_error)


def test_a_failing_blocking_check_keeps_bad_counts_from_the_hotspots(gold, tmp_path):
    settings = settings_for(tmp_path, CRIME_EXPORT_PATH=str(SAMPLE / "crimes_2016.csv.zst"))
    shutil.copy(gold[0].data_dir / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:  # a geolocated incident that lost its cells
        con.execute("UPDATE incidents_enriched SET h3_r10 = NULL WHERE id = (SELECT min(id) FROM incidents_enriched"
                    " WHERE month = '2016-04' AND is_geolocated)")
    with dg.instance_for_test() as instance:
        result = run_with_config(settings, ["h3_monthly_stats", "hotspots"], "2016-04", {}, instance,
                                 raise_on_error=False)
    assert not result.success
    assert check_results(result)["cells_sum_to_geolocated_incidents"] is False
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {"h3_monthly_stats"}


def test_run_config_sets_the_hotspot_resolution(gold):
    settings, instance, _, _ = gold
    config = {"ops": {"hotspots": {"config": {"resolution": 9, "min_incidents": 5}},
                      "hotspot_maps": {"config": {"max_outlined": 5}},
                      "h3_monthly_stats": {"config": {"min_incidents": 50}}}}
    result = run_with_config(settings, ["h3_monthly_stats", "hotspots", "hotspot_maps"], "2016-04", config, instance)
    assert result.success
    found = query(settings, "SELECT DISTINCT month, resolution FROM hotspots")
    assert found in ([], [("2016-04", 9)])
    # The maps follow the resolution the month was tested at.
    maps = instance.get_latest_materialization_event(dg.AssetKey("hotspot_maps")).asset_materialization.metadata
    assert maps["resolution"].value == (9 if found else 8)
    low = query(settings, "SELECT bool_and(is_low_confidence) FROM h3_monthly_stats"
                          " WHERE month = '2016-04' AND incidents < 50")[0][0]
    assert low is True
    meta = instance.get_latest_materialization_event(dg.AssetKey("hotspots")).asset_materialization.metadata
    assert meta["resolution"].value == 9 and meta["test"].value["min_incidents"] == 5
