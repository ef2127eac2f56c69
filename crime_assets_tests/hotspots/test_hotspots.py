"""The hotspot test on constructed counts, its handling of short history, and the maps."""

from __future__ import annotations

import math

import duckdb
import h3
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from crime_assets.hotspots.h3_stats import CELL_LABELS_TABLE, H3_CELL_LABELS, H3_MONTHLY_STATS, MONTHLY_STATS_TABLE
from crime_assets.hotspots.hotspots import (
    HOTSPOTS_TABLE, HotspotTest, find_hotspots, hotspots_missing_from_stats, poisson_upper_tail, score_cells,
)
from crime_assets.hotspots.maps import incident_breaks, render_months, thumbnail_markdown
from crime_assets.common.months import MonthWindow, months_before
from crime_assets.common.schema import create_table_sql

# 40 neighbouring r8 cells around the Loop.
CELLS = sorted(h3.grid_disk(h3.latlng_to_cell(41.8819, -87.6278, 8), 4))[:40]
SPIKE = CELLS[7]


def test_poisson_upper_tail_matches_hand_computation():
    got = poisson_upper_tail([0, 1, 3, 10], [1.0, 1.0, 1.0, 2.0])
    assert got[0] == 1.0
    assert got[1] == pytest.approx(1 - math.exp(-1))                      # 0.632121
    assert got[2] == pytest.approx(1 - math.exp(-1) * (1 + 1 + 0.5))      # 0.080301
    tail = 1 - sum(math.exp(-2) * 2 ** k / math.factorial(k) for k in range(10))
    assert got[3] == pytest.approx(tail, rel=1e-9)                          # 4.65e-5


def test_months_before():
    assert months_before("2016-02", 3) == ["2015-11", "2015-12", "2016-01"]
    assert months_before("2016-01", 12)[0] == "2015-01"


def test_a_constructed_spike_is_the_only_hotspot():
    history = pd.DataFrame({"h3_cell": CELLS, "incidents": [12 * 20] * len(CELLS)})  # 20 a month for 12 months
    counts = [22] * len(CELLS)
    counts[CELLS.index(SPIKE)] = 45            # P(X >= 45 | 20) ~ 1e-6: far beyond 0.05 / 40 tested
    counts[0] = 29                             # P(X >= 29 | 20) ~ 0.04: surprising alone, not among 40 cells
    current = pd.DataFrame({"h3_cell": CELLS, "incidents": counts})
    scored = score_cells(current, history, 12, HotspotTest())
    hot = scored[scored["is_hotspot"]]
    assert hot["h3_cell"].tolist() == [SPIKE] and hot["rank"].tolist() == [1]
    assert scored.loc[scored["h3_cell"] == SPIKE, "baseline_mean"].item() == 20
    assert scored["threshold"].iloc[0] == pytest.approx(0.05 / 40)
    assert scored.loc[scored["h3_cell"] == CELLS[0], "p_value"].item() < 0.05
    uncorrected = score_cells(current, history, 12, HotspotTest(bonferroni=False))
    assert set(uncorrected.loc[uncorrected["is_hotspot"], "h3_cell"]) == {SPIKE, CELLS[0]}


def test_quiet_and_new_cells():
    history = pd.DataFrame({"h3_cell": [CELLS[0]], "incidents": [12]})  # 1 a month
    current = pd.DataFrame({"h3_cell": [CELLS[0], CELLS[1], CELLS[2]], "incidents": [8, 12, 3]})
    scored = score_cells(current, history, 12, HotspotTest(min_incidents=5)).set_index("h3_cell")
    # a cell going from 1 to 8 a month is a hotspot; a new cell with 12 is judged against the floor (0.5)
    assert scored.loc[CELLS[0], "is_hotspot"] and scored.loc[CELLS[1], "is_hotspot"]
    assert scored.loc[CELLS[1], "expected"] == 0.5 and scored.loc[CELLS[1], "baseline_mean"] == 0
    # 3 incidents is below min_incidents: not tested, however surprising
    assert not scored.loc[CELLS[2], "tested"] and not scored.loc[CELLS[2], "is_hotspot"]


def test_invalid_test_parameters_are_refused():
    with pytest.raises(ValueError, match="resolution"):
        HotspotTest(resolution=11)
    with pytest.raises(ValueError, match="min_history_months"):
        HotspotTest(history_months=6, min_history_months=7)
    with pytest.raises(ValueError, match="alpha"):
        HotspotTest(alpha=1.5)
    with pytest.raises(ValueError, match="history_months"):  # more than the months the asset declares
        HotspotTest(history_months=13)


def stats_tables(monthly_counts: dict[str, dict[str, int]]) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with h3_monthly_stats and h3_cell_labels holding the given r8 counts."""
    con = duckdb.connect()
    con.execute(create_table_sql(MONTHLY_STATS_TABLE, H3_MONTHLY_STATS))
    con.execute(create_table_sql(CELL_LABELS_TABLE, H3_CELL_LABELS))
    rows = pd.DataFrame([(month, 8, cell, n) for month, counts in monthly_counts.items() for cell, n in counts.items()],
                        columns=["month", "resolution", "h3_cell", "incidents"])
    # another resolution's rows must not leak into the r8 test
    other = pd.DataFrame({"month": list(monthly_counts), "resolution": 9,
                          "h3_cell": h3.cell_to_children(SPIKE, 9)[0], "incidents": 500})
    con.register("rows", pd.concat([rows, other]))
    con.execute(f"INSERT INTO {MONTHLY_STATS_TABLE} (month, resolution, h3_cell, incidents, arrests, arrest_rate,"
                " pooled_arrest_rate, dominant_primary_type) SELECT *, 0, 0.0, 0.1, 'THEFT' FROM rows")
    con.execute(f"INSERT INTO {CELL_LABELS_TABLE} (month, resolution, h3_cell, incidents, label)"
                " SELECT *, 'block of ' || right(h3_cell, 6) FROM rows WHERE resolution = 8")
    return con


def _month_range(first: str, count: int) -> list[str]:
    start = int(first[:4]) * 12 + int(first[5:]) - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(start, start + count)]


def test_hotspots_over_a_range_with_short_and_gappy_history():
    keys = _month_range("2015-01", 16)                       # 2015-01 ... 2016-04
    rng = np.random.default_rng(7)
    counts = {month: {cell: int(rng.poisson(20)) for cell in CELLS} for month in keys}
    counts["2016-04"][SPIKE] = 60
    del counts["2015-09"]                                     # a month never materialised
    con = stats_tables(counts)
    window = MonthWindow.from_keys("2015-01", "2016-04")
    run = find_hotspots(con, window, HotspotTest())
    by_month = {m.month: m for m in run.months}
    # months with fewer than 3 months of history are not tested, and say why
    assert set(run.skipped) == {"2015-01", "2015-02", "2015-03", "2015-09"}
    assert "fewer than min_history_months=3" in run.skipped["2015-03"]
    assert "no h3_monthly_stats rows" in run.skipped["2015-09"]
    # the gap shortens the history instead of counting as a month of zeros
    assert by_month["2016-04"].history_months == 11 and by_month["2015-12"].history_months == 10
    found = con.execute(f"SELECT month, rank, h3_cell, label, incidents, history_months FROM {HOTSPOTS_TABLE}"
                        " ORDER BY month, rank").fetchall()
    assert ("2016-04", 1, SPIKE, f"block of {SPIKE[-6:]}", 60, 11) in found
    assert by_month["2016-04"].top[0][1] == SPIKE
    assert hotspots_missing_from_stats(con, window) == []

    # re-running one month replaces exactly its rows
    before = con.execute(f"SELECT * FROM {HOTSPOTS_TABLE} ORDER BY ALL").fetchall()
    find_hotspots(con, MonthWindow.from_keys("2016-04"), HotspotTest())
    assert con.execute(f"SELECT * FROM {HOTSPOTS_TABLE} ORDER BY ALL").fetchall() == before
    # a hotspot whose cell vanished from the statistics is caught by the gate
    con.execute(f"DELETE FROM {MONTHLY_STATS_TABLE} WHERE month = '2016-04' AND h3_cell = ?", [SPIKE])
    assert hotspots_missing_from_stats(con, window) == [("2016-04", 8, SPIKE)]


def test_maps_are_drawn_and_their_preview_stays_small(tmp_path):
    cells = pd.DataFrame({"h3_cell": CELLS, "incidents": np.arange(1, len(CELLS) + 1) * 7,
                          "arrests": np.arange(len(CELLS)), "pooled_incidents": [10, 30] * (len(CELLS) // 2),
                          "pooled_arrest_rate": np.linspace(0, 0.6, len(CELLS))})
    both = pd.concat([cells.assign(month="2016-05"), cells.assign(month="2016-04")])
    found = pd.DataFrame({"month": "2016-04", "h3_cell": CELLS[:5], "rank": [1, 2, 3, 4, 5]})
    drawn = render_months(both, found, tmp_path, 8, max_outlined=3)
    assert list(drawn) == ["2016-04", "2016-05"]
    maps, empty = drawn["2016-04"], drawn["2016-05"]  # 2016-05 has no hotspots: nothing outlined
    for path in (maps.incidents, maps.arrest_rate, empty.incidents):
        with Image.open(path) as image:
            assert image.size == (640, 720)
            # not a blank canvas: the hexagons' colours are there
            assert len(image.convert("RGB").getcolors(maxcolors=100_000)) > 20
    assert maps.incidents.name == "2016-04_incidents.png" and maps.arrest_rate.name == "2016-04_arrest_rate.png"
    preview = thumbnail_markdown([maps.incidents, maps.arrest_rate])
    assert preview.count("](data:image/png;base64,") == 2 and len(preview) < 40_000
    assert incident_breaks(280) == [1, 2, 5, 10, 20, 50, 100, 200, 500]
