"""The H3 statistics: formulas against hand-computed values, and conservation on the real months."""

from __future__ import annotations

import math
from datetime import datetime

import duckdb
import h3
import numpy as np
import pytest

from crime_assets.hotspots import h3_stats
from crime_assets.hotspots.crime_categories import CATEGORY_NAMES, category_of
from crime_assets.enrichment.enrich import ENRICHED_TABLE
from crime_assets.common.months import MonthWindow
from crime_assets.common.schema import INCIDENTS_ENRICHED, create_table_sql

# An r10 cell in the Loop, one of its ring-1 neighbours and a cell ~15 km away.
CENTRE = h3.latlng_to_cell(41.8819, -87.6278, 10)
NEIGHBOUR = sorted(set(h3.grid_disk(CENTRE, 1)) - {CENTRE})[0]
FAR = h3.latlng_to_cell(41.75, -87.62, 10)


def incidents_table(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    """An in-memory incidents_enriched holding ``rows`` (cell, month, arrest, domestic, primary_type, block,
    district, beat, ward, community_area); coarser cells are the r10 cell's parents, as enrichment makes them."""
    con = duckdb.connect()
    con.execute(create_table_sql(ENRICHED_TABLE, INCIDENTS_ENRICHED))
    for i, row in enumerate(rows):
        cell = row.get("cell")
        month = row.get("month", "2016-03")
        values = {
            "id": i, "month": month, "occurred_at": datetime.strptime(f"{month}-{row.get('day', 1):02d}", "%Y-%m-%d"),
            "primary_type": row.get("primary_type", "THEFT"), "arrest": row.get("arrest", False),
            "domestic": row.get("domestic", False), "is_geolocated": cell is not None,
            "geo_status": "ok" if cell else "missing", "block": row.get("block", "001XX N STATE ST"),
            "district": row.get("district", 1), "beat": row.get("beat", 111), "ward": row.get("ward", 42),
            "community_area": row.get("community_area", 32),
            **{f"h3_r{r}": (h3.cell_to_parent(cell, r) if r < 10 else cell) if cell else None for r in range(6, 11)},
        }
        con.execute(f"INSERT INTO {ENRICHED_TABLE} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                    list(values.values()))
    return con


def repeat(n: int, **row) -> list[dict]:
    return [dict(row) for _ in range(n)]


def stats_row(con, cell: str, month: str = "2016-03") -> dict:
    cursor = con.execute("SELECT * FROM h3_monthly_stats WHERE h3_cell = ? AND month = ?", [cell, month])
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    return dict(zip(names, row)) if row else {}


# z = 1.959964, z^2 = 3.841459. For n = 10: 1 + z^2/n = 1.384146, z^2/2n = 0.192073, z^2/4n^2 = 0.009604,
# z / (1 + z^2/n) = 1.416010. (statsmodels' proportion_confint(method="wilson") gives the same values.)
@pytest.mark.parametrize("arrests, incidents, lower, upper", [
    # p = 0.5: centre (0.5 + 0.192073) / 1.384146 = 0.5, half 1.416010 * sqrt(0.025 + 0.009604) = 0.263407
    (5, 10, 0.236593, 0.763407),
    # p = 0.2: centre 0.392073 / 1.384146 = 0.283260, half 1.416010 * sqrt(0.016 + 0.009604) = 0.226578
    (2, 10, 0.056682, 0.509838),
    # k = 0: centre = half = 0.192073 / 1.384146 = 0.138766
    (0, 10, 0.0, 0.277533),
    (10, 10, 0.722467, 1.0),
    # n = 1, k = 1: centre (1 + 1.920730) / 4.841459 = 0.603275, half 0.404826 * sqrt(0.960365) = 0.396725
    (1, 1, 0.206549, 1.0),
])
def test_wilson_interval_matches_hand_computation(arrests, incidents, lower, upper):
    got_lower, got_upper = h3_stats.wilson_interval(arrests, incidents)
    assert got_lower == pytest.approx(lower, abs=1e-6)
    assert got_upper == pytest.approx(upper, abs=1e-6)


def test_month_ids_keep_the_order_of_months_and_convert_back():
    con = duckdb.connect()
    h3_stats.register_macros(con)
    months = ["2001-01", "2001-12", "2002-01", "2016-02", "2026-10"]
    rows = con.execute("SELECT m, month_id(m) AS id, month_key(month_id(m)) FROM unnest($m::VARCHAR[]) AS t(m) ORDER BY id",
                       {"m": months[::-1]}).fetchall()
    assert [r[0] for r in rows] == months and [r[2] for r in rows] == months
    assert rows[2][1] - rows[1][1] == 1  # December to January is one month


def test_wilson_interval_contains_the_rate_and_stays_in_unit_interval():
    con = duckdb.connect()
    h3_stats.register_macros(con)
    outside = con.execute("""
        SELECT count(*) FROM (
            SELECT k, n, wilson_lower(k, n, $z) AS lower, wilson_upper(k, n, $z) AS upper
            FROM range(1, 400) AS a(n), range(0, 400) AS b(k) WHERE k <= n)
        WHERE NOT (0 <= lower AND lower <= k / n AND k / n <= upper AND upper <= 1)""", {"z": h3_stats.Z_95}).fetchone()[0]
    assert outside == 0
    assert h3_stats.wilson_interval(0, 0) == (None, None)


def test_pooled_counts_are_the_cell_and_its_ring1_neighbours():
    centre, neighbour, far = (int(c, 16) for c in (CENTRE, NEIGHBOUR, FAR))
    order = np.argsort(np.array([centre, neighbour, far], dtype=np.uint64))
    cells = np.array([centre, neighbour, far], dtype=np.uint64)[order]
    incidents, arrests = np.array([10, 30, 4])[order], np.array([2, 15, 4])[order]
    pooled_incidents, pooled_arrests, neighbours = h3_stats.ring1_pooled(np.array(["m"] * 3), cells, incidents, arrests)
    got = {int(c): (int(i), int(a), int(n)) for c, i, a, n in zip(cells, pooled_incidents, pooled_arrests, neighbours)}
    assert got[centre] == (40, 17, 1) and got[neighbour] == (40, 17, 1) and got[far] == (4, 4, 0)


def test_pooled_counts_stay_within_their_month():
    centre, neighbour = sorted(int(c, 16) for c in (CENTRE, NEIGHBOUR))
    months = np.array(["2016-01", "2016-01", "2016-02"])
    cells = np.array([centre, neighbour, centre], dtype=np.uint64)
    pooled_incidents, pooled_arrests, neighbours = h3_stats.ring1_pooled(months, cells, np.array([1, 2, 4]), np.array([0, 1, 3]))
    # in 2016-02 the neighbour has no row: the centre pools only itself
    assert pooled_incidents.tolist() == [3, 3, 4] and pooled_arrests.tolist() == [1, 1, 3]
    assert neighbours.tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="sorted"):
        h3_stats.ring1_pooled(months, cells[[1, 0, 2]], np.array([1, 2, 4]), np.array([0, 1, 3]))


def test_monthly_stats_match_hand_computed_values():
    rows = (repeat(2, cell=CENTRE, primary_type="THEFT", arrest=True)
            + repeat(3, cell=CENTRE, primary_type="THEFT")
            + repeat(5, cell=CENTRE, primary_type="BATTERY", domestic=True)  # ties with THEFT: BATTERY first
            + repeat(15, cell=NEIGHBOUR, primary_type="NARCOTICS", arrest=True)
            + repeat(15, cell=NEIGHBOUR, primary_type="WEAPONS VIOLATION")
            + repeat(4, cell=FAR, primary_type="HOMICIDE", arrest=True)
            + repeat(3, cell=None, primary_type="THEFT"))  # not geolocated: in no cell
    con = incidents_table(rows)
    window = MonthWindow.from_keys("2016-03")
    summary = h3_stats.build_monthly_stats(con, window, h3_stats.ConfidenceRule(min_incidents=5, max_interval_width=0.4))

    centre = stats_row(con, CENTRE)
    assert (centre["incidents"], centre["arrests"]) == (10, 2)
    assert centre["arrest_rate"] == pytest.approx(0.2)
    assert (centre["arrest_rate_lower"], centre["arrest_rate_upper"]) == pytest.approx((0.056682, 0.509838), abs=1e-6)
    # pooled over the centre and its only neighbour with incidents: (2 + 15) / (10 + 30), not the mean of the
    # two rates (0.2 + 0.5) / 2 = 0.35
    assert (centre["pooled_incidents"], centre["pooled_arrests"]) == (40, 17)
    assert centre["pooled_arrest_rate"] == pytest.approx(0.425)
    assert centre["neighbours_with_incidents"] == 1
    assert centre["is_low_confidence"]  # interval 0.453 wide > 0.4
    assert (centre["dominant_primary_type"], centre["dominant_type_share"]) == ("BATTERY", 0.5)
    assert centre["domestic_share"] == 0.5
    assert (centre["violent_incidents"], centre["property_incidents"], centre["other_incidents"]) == (5, 5, 0)
    assert centre["parent_cell"] == h3.cell_to_parent(CENTRE, 9)

    neighbour = stats_row(con, NEIGHBOUR)
    assert neighbour["pooled_arrest_rate"] == pytest.approx(0.425)
    assert not neighbour["is_low_confidence"]  # 30 incidents, interval (0.332, 0.668) 0.335 wide
    assert (neighbour["drugs_incidents"], neighbour["weapons_incidents"]) == (15, 15)

    far = stats_row(con, FAR)
    assert (far["arrest_rate"], far["arrest_rate_upper"], far["pooled_arrest_rate"]) == (1.0, 1.0, 1.0)
    assert far["neighbours_with_incidents"] == 0 and far["is_low_confidence"]  # 4 < 5 incidents

    # every resolution holds the 44 geolocated incidents; the r10 cells' parents are the coarser cells
    assert con.execute("SELECT resolution, sum(incidents) FROM h3_monthly_stats GROUP BY ALL ORDER BY 1").fetchall() == [
        (r, 44) for r in range(6, 11)]
    assert summary.incidents == 44 and summary.cells_by_resolution[10] == 3
    assert h3_stats.count_conservation_violations(con, window) == []
    assert h3_stats.parent_sum_violations(con, window) == (0, [])
    assert h3_stats.rate_bound_violations(con, window) == (0, [])


def test_crime_categories_group_every_primary_type_once():
    assert [category_of(t) for t in ("BATTERY", " theft ", "NARCOTICS", "WEAPONS VIOLATION", "GAMBLING",
                                     "NON - CRIMINAL", "SOMETHING NEW", None)] == [
        "violent", "property", "drugs", "weapons", "public_order", "other", "other", "other"]
    assert category_of("CRIM SEXUAL ASSAULT") == category_of("CRIMINAL  SEXUAL ASSAULT") == "violent"
    frame = h3_stats.primary_types_frame(["THEFT", None, "BATTERY", "THEFT"])
    assert frame["primary_type"].tolist() == ["BATTERY", "THEFT", None]
    assert [CATEGORY_NAMES[i] for i in frame["category_id"]] == ["violent", "property", "other"]


def test_rebuilding_replaces_only_the_window_and_changes_nothing():
    con = incidents_table(repeat(3, cell=CENTRE, month="2016-03", arrest=True) + repeat(2, cell=FAR, month="2016-04"))
    march, april = MonthWindow.from_keys("2016-03"), MonthWindow.from_keys("2016-04")
    h3_stats.build_monthly_stats(con, march)
    h3_stats.build_monthly_stats(con, april)
    before = con.execute("SELECT * FROM h3_monthly_stats ORDER BY ALL").fetchall()
    h3_stats.build_monthly_stats(con, march)
    assert con.execute("SELECT * FROM h3_monthly_stats ORDER BY ALL").fetchall() == before
    assert con.execute("SELECT month, count(*) FROM h3_monthly_stats GROUP BY ALL ORDER BY 1").fetchall() == [
        ("2016-03", 5), ("2016-04", 5)]


def test_labels_name_the_most_frequent_places():
    rows = (repeat(3, cell=CENTRE, block="001XX N STATE ST", district=1, beat=111, community_area=32)
            + repeat(3, cell=CENTRE, block="0000X W MADISON ST", district=1, beat=122, community_area=32)
            + repeat(1, cell=CENTRE, block="002XX W ADAMS ST", district=18, beat=1834, community_area=8))
    con = incidents_table(rows)
    h3_stats.build_cell_labels(con, MonthWindow.from_keys("2016-03"))
    label = con.execute("SELECT top_block, top_block_share, blocks, district, beat, community_area_name, label"
                        " FROM h3_cell_labels WHERE h3_cell = ?", [CENTRE]).fetchone()
    # blocks tie 3-3: the alphabetically first wins; beats tie 3-3: the smaller number
    assert label == ("0000X W MADISON ST", 3 / 7, 3, 1, 111, "Loop", "0000X W MADISON ST, Loop, district 1")
    assert h3_stats.label_coverage_violations(con, MonthWindow.from_keys("2016-03")) == []


@pytest.fixture(scope="module")
def real_stats(warehouse_2015_2016):
    """The 24 real months of incidents_enriched (read-only) with the gold tables built in memory."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{warehouse_2015_2016.data_dir / 'warehouse.duckdb'}' AS real (READ_ONLY)")  # DuckDB 1.5: no parameter in ATTACH
    con.execute(f"CREATE VIEW {ENRICHED_TABLE} AS SELECT * FROM real.{ENRICHED_TABLE}")
    h3_stats.build_monthly_stats(con, MonthWindow.from_keys("2015-01", "2016-12"))
    summer = MonthWindow.from_keys("2016-06", "2016-08")
    h3_stats.build_daily_counts(con, summer)
    h3_stats.build_cell_labels(con, summer)
    yield con
    con.close()


def test_counts_are_conserved_on_the_real_months(real_stats):
    con, window = real_stats, MonthWindow.from_keys("2015-01", "2016-12")
    assert h3_stats.count_conservation_violations(con, window) == []
    assert h3_stats.parent_sum_violations(con, window) == (0, [])
    assert h3_stats.rate_bound_violations(con, window) == (0, [])
    summer = MonthWindow.from_keys("2016-06", "2016-08")
    assert h3_stats.count_conservation_violations(con, summer, table="h3_daily_counts") == []
    assert h3_stats.label_coverage_violations(con, summer) == []
    # The cells are exactly the enriched table's own h3 columns grouped, at every resolution.
    for r in range(6, 11):
        differences = con.execute(f"""
            SELECT count(*) FROM (
                (SELECT month, h3_r{r}, count(*), count(*) FILTER (arrest) FROM incidents_enriched
                 WHERE is_geolocated GROUP BY ALL
                 EXCEPT SELECT month, h3_cell, incidents, arrests FROM h3_monthly_stats WHERE resolution = {r})
                UNION ALL
                (SELECT month, h3_cell, incidents, arrests FROM h3_monthly_stats WHERE resolution = {r}
                 EXCEPT SELECT month, h3_r{r}, count(*), count(*) FILTER (arrest) FROM incidents_enriched
                 WHERE is_geolocated GROUP BY ALL))""").fetchone()[0]
        assert differences == 0, f"r{r}"
    categories = " + ".join(f"{name}_incidents" for name in CATEGORY_NAMES)
    assert con.execute(f"SELECT count(*) FROM h3_monthly_stats WHERE {categories} <> incidents").fetchone()[0] == 0
    geolocated = con.execute("SELECT count(*) FROM incidents_enriched WHERE is_geolocated AND month = '2016-07'").fetchone()[0]
    assert con.execute("SELECT sum(incidents) FROM h3_daily_counts WHERE month = '2016-07' AND resolution = 10").fetchone()[0] == geolocated


def test_the_gates_catch_broken_tables(real_stats):
    con, window = real_stats, MonthWindow.from_keys("2016-07")
    con.execute("CREATE TEMP TABLE saved AS SELECT * FROM h3_monthly_stats WHERE month = '2016-07'")
    try:
        cell = con.execute("SELECT h3_cell FROM h3_monthly_stats WHERE month = '2016-07' AND resolution = 9 "
                           "ORDER BY incidents DESC LIMIT 1").fetchone()[0]
        con.execute("UPDATE h3_monthly_stats SET incidents = incidents + 1, arrest_rate_lower = 0.99 "
                    "WHERE month = '2016-07' AND h3_cell = ?", [cell])
        assert [(m, r) for m, r, *_ in h3_stats.count_conservation_violations(con, window)] == [("2016-07", 9)]
        count, rows = h3_stats.parent_sum_violations(con, window)
        assert count == 2 and {r[2] for r in rows} == {cell, h3.cell_to_parent(cell, 8)}  # its parent and itself
        assert h3_stats.rate_bound_violations(con, window)[0] == 1
        child = con.execute("SELECT h3_cell FROM h3_monthly_stats WHERE month = '2016-07' AND resolution = 10 "
                            "AND parent_cell <> ? LIMIT 1", [cell]).fetchone()[0]
        con.execute("UPDATE h3_monthly_stats SET parent_cell = ? WHERE month = '2016-07' AND h3_cell = ?", [cell, child])
        _, rows = h3_stats.parent_sum_violations(con, window, limit=100)
        assert [r[2] for r in rows if r[3].endswith("is not the H3 parent")] == [child]
    finally:
        con.execute("DELETE FROM h3_monthly_stats WHERE month = '2016-07'")
        con.execute("INSERT INTO h3_monthly_stats SELECT * FROM saved")


def test_busiest_cells_read_as_places(real_stats):
    labels = real_stats.execute(
        "SELECT label, top_block_share FROM h3_cell_labels WHERE month = '2016-07' AND resolution = 8"
        " ORDER BY incidents DESC LIMIT 3").fetchall()
    assert all(label.count(", ") == 2 and "district" in label for label, _ in labels)
    assert all(0 < share <= 1 for _, share in labels)
    assert math.isclose(real_stats.execute(
        "SELECT avg((label IS NOT NULL)::INTEGER) FROM h3_cell_labels").fetchone()[0], 1.0)
