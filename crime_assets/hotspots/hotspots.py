"""Hotspots: cells whose incidents this month are anomalously high against the same cell's trailing months.

The test, for month m at one resolution (counts from ``h3_monthly_stats``):

- History H: the ``history_months`` (12) months before m that h3_monthly_stats holds at that
  resolution. A month it does not hold (never materialised) is left out rather than counted as
  zero; a cell without a row in a held month had zero incidents that month.
- Baseline: ``baseline_mean`` = the cell's incidents summed over H / |H|;
  ``expected`` = max(baseline_mean, ``baseline_floor``), so a cell new this month is judged against
  a small rate rather than against zero (where any incident would be infinitely surprising).
- Tail probability: ``p_value`` = P(X >= x) for X ~ Poisson(expected) and x the month's incidents:
  how often a month at least this busy happens by chance if the cell kept its usual rate.
- Tested: cells with x >= ``min_incidents`` (a busy cell, not a quiet cell going from 0 to 2).
  A tested cell is a hotspot when p_value <= ``alpha`` / (number of tested cells) -- a Bonferroni
  correction, so over a month's ~800 tested r8 cells about ``alpha`` false alarms are expected in
  all, not 5% of them -- or p_value <= ``alpha`` when ``bonferroni`` is off.
- Rank: by p_value, then by excess (x - baseline_mean), then by cell id.

Short history: a month with fewer than ``min_history_months`` months in H gets no hotspot rows (it is
reported as skipped); with at least that many, the mean is over the months there are. So the first
months of a fresh warehouse have no hotspots, and a gap in h3_monthly_stats shortens the baseline
instead of dragging it down.

Poisson counts assume incidents are independent with a steady rate; crime clusters (one incident
brings others) and varies with the season, so p_values read as a ranking of surprise more than as
exact error rates: summer months have more hotspots than winter ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, model_validator
from scipy.special import pdtrc

from crime_assets.hotspots.h3_stats import CELL_LABELS_TABLE, MONTHLY_STATS_TABLE, replace_window
from crime_assets.common.months import MonthWindow, months_before
from crime_assets.common.schema import H3_RESOLUTIONS, Column

HOTSPOTS_TABLE = "hotspots"

HOTSPOTS = (
    Column("month", "VARCHAR", "Partition key (YYYY-MM) of the month tested"),
    Column("resolution", "INTEGER", "H3 resolution of the cells tested (run config, default 8)"),
    Column("rank", "INTEGER", "1 = the most surprising hotspot of the month (smallest p_value)"),
    Column("h3_cell", "VARCHAR", "H3 cell id (hex string)"),
    Column("label", "VARCHAR", "The cell's label from h3_cell_labels, e.g. '001XX N STATE ST, Loop, district 1'"),
    Column("incidents", "BIGINT", "Geolocated incidents in the cell this month"),
    Column("baseline_mean", "DOUBLE", "Mean monthly incidents of the cell over its history months"),
    Column("history_months", "INTEGER", "Months of history the baseline was taken over (at most history_months)"),
    Column("expected", "DOUBLE", "max(baseline_mean, baseline_floor): the Poisson mean tested against"),
    Column("ratio", "DOUBLE", "incidents / expected"),
    Column("p_value", "DOUBLE", "P(X >= incidents) for X ~ Poisson(expected)"),
    Column("threshold", "DOUBLE", "The p_value a cell had to reach: alpha, divided by the cells tested (Bonferroni)"),
    Column("dominant_primary_type", "VARCHAR", "Most frequent primary type in the cell this month"),
    Column("arrest_rate", "DOUBLE", "The cell's arrest rate this month"),
    Column("pooled_arrest_rate", "DOUBLE", "The cell's neighbour-pooled arrest rate this month"),
)


# The longest history a test may read: the hotspots asset declares these months (its partition mapping),
# so the graph shows all that a run reads.
MAX_HISTORY_MONTHS = 12


class HotspotTest(BaseModel, frozen=True):
    """Parameters of the hotspot test (see the module docstring). Also the run config of the hotspots asset."""

    resolution: int = Field(default=8, ge=min(H3_RESOLUTIONS), le=max(H3_RESOLUTIONS),
                            description="H3 resolution of the cells tested (6-10)")
    history_months: int = Field(default=MAX_HISTORY_MONTHS, ge=1, le=MAX_HISTORY_MONTHS,
                                description="Trailing months a cell's baseline is taken over (at most 12)")
    min_history_months: int = Field(
        default=3, ge=1, description="Months of history a month needs to be tested; with fewer it gets no hotspots")
    min_incidents: int = Field(default=10, ge=1, description="Cells with fewer incidents this month are not tested")
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="Significance level of the Poisson upper-tail test")
    bonferroni: bool = Field(default=True, description="Divide alpha by the number of cells tested in the month")
    baseline_floor: float = Field(
        default=0.5, gt=0.0, description="Smallest Poisson mean tested against (cells with no or little history)")

    @model_validator(mode="after")
    def _history_fits(self):
        if self.min_history_months > self.history_months:
            raise ValueError("need min_history_months <= history_months, got "
                             f"{self.min_history_months} and {self.history_months}")
        return self

    def values(self) -> dict:
        """The parameters alone (a config class extending this one may have more fields)."""
        return self.model_dump(include=set(HotspotTest.model_fields))


def poisson_upper_tail(counts, means) -> np.ndarray:
    """P(X >= count) for X ~ Poisson(mean), elementwise; 1 where count <= 0."""
    counts = np.asarray(counts, dtype=float)
    means = np.asarray(means, dtype=float)
    # pdtrc(k, m) = P(X > k) = P(X >= k + 1)
    return np.where(counts <= 0, 1.0, pdtrc(np.maximum(counts - 1, 0), means))


def score_cells(current: pd.DataFrame, history: pd.DataFrame, history_months: int, test: HotspotTest) -> pd.DataFrame:
    """Score one month's cells against their history.

    ``current``: h3_cell, incidents (cells with incidents this month). ``history``: h3_cell, incidents,
    summed over the ``history_months`` months available. Returns every current cell with baseline_mean,
    expected, ratio, p_value, tested, threshold and is_hotspot, ranked (hotspots first).
    """
    if history_months < 1:
        raise ValueError("scoring needs at least one month of history")
    cells = current["h3_cell"].to_numpy()
    incidents = current["incidents"].to_numpy()
    at = pd.Index(history["h3_cell"]).get_indexer(cells)
    past = np.where(at >= 0, history["incidents"].to_numpy()[at], 0)
    baseline = past / history_months
    expected = np.maximum(baseline, test.baseline_floor)
    p_value = poisson_upper_tail(incidents, expected)
    tested = incidents >= test.min_incidents
    threshold = test.alpha / tested.sum() if test.bonferroni and tested.any() else test.alpha
    is_hotspot = tested & (p_value <= threshold)
    excess = incidents - baseline
    # hotspots first, then by p_value, larger excess, cell id (np.lexsort: last key first)
    order = np.lexsort((cells.astype(str), -excess, p_value, ~is_hotspot))
    scored = pd.DataFrame({
        "h3_cell": cells, "incidents": incidents, "baseline_mean": baseline, "history_months": history_months,
        "expected": expected, "ratio": incidents / expected, "p_value": p_value, "tested": tested,
        "threshold": threshold, "is_hotspot": is_hotspot, "excess": excess,
    }).iloc[order].reset_index(drop=True)
    scored["rank"] = np.arange(1, len(scored) + 1)
    return scored


@dataclass(frozen=True)
class MonthHotspots:
    month: str
    history_months: int
    cells: int
    tested: int
    hotspots: int
    skipped: str | None = None  # why the month was not tested (no rows written), e.g. too little history
    top: list[tuple] = field(default_factory=list)  # (rank, h3_cell, label, incidents, baseline_mean, p_value)


@dataclass(frozen=True)
class HotspotRun:
    test: HotspotTest
    months: list[MonthHotspots]

    @property
    def rows(self) -> int:
        return sum(m.hotspots for m in self.months)

    @property
    def skipped(self) -> dict[str, str]:
        return {m.month: m.skipped for m in self.months if m.skipped}


def _month_counts(con: duckdb.DuckDBPyConnection, months: list[str], resolution: int) -> pd.DataFrame:
    return con.execute(
        f"SELECT month, h3_cell, incidents FROM {MONTHLY_STATS_TABLE}"
        " WHERE resolution = $r AND month BETWEEN $first AND $last",
        {"r": resolution, "first": months[0], "last": months[-1]}).df()


def find_hotspots(con: duckdb.DuckDBPyConnection, window: MonthWindow, test: HotspotTest = HotspotTest()) -> HotspotRun:
    """Test each month of the window in order and replace the window's months of the hotspots table.

    Reads h3_monthly_stats for the window and the ``history_months`` before it (so a ranged run sees
    every month's history once the window's statistics exist) and labels from h3_cell_labels.
    """
    keys = [*months_before(window.keys[0], test.history_months), *window.keys]
    counts = _month_counts(con, keys, test.resolution)
    # incidents as a (month, cell) grid over the window and its history; a month held with no row for a
    # cell is a zero, a month not held at all is left out of the history
    cells = pd.Index(np.sort(counts["h3_cell"].unique()))
    row = pd.Index(keys).get_indexer(counts["month"])
    grid = np.zeros((len(keys), len(cells)), dtype=np.int64)
    grid[row, cells.get_indexer(counts["h3_cell"])] = counts["incidents"].to_numpy()
    held = np.zeros(len(keys), dtype=bool)
    held[row] = True
    scored_months, summaries = [], []
    for at, month in enumerate(keys[test.history_months:], start=test.history_months):
        history_rows = [i for i in range(at - test.history_months, at) if held[i]]
        present = grid[at] > 0
        if not present.any():
            summaries.append(MonthHotspots(month, len(history_rows), 0, 0, 0,
                                           skipped=f"no h3_monthly_stats rows at r{test.resolution}"))
            continue
        if len(history_rows) < test.min_history_months:
            summaries.append(MonthHotspots(month, len(history_rows), int(present.sum()), 0, 0, skipped=(
                f"{len(history_rows)} month(s) of history, fewer than min_history_months={test.min_history_months}")))
            continue
        current = pd.DataFrame({"h3_cell": cells[present], "incidents": grid[at, present]})
        history = pd.DataFrame({"h3_cell": cells, "incidents": grid[history_rows].sum(axis=0)})
        scored = score_cells(current, history, len(history_rows), test)
        hot = scored[scored["is_hotspot"]].assign(month=month, resolution=test.resolution)
        scored_months.append(hot)
        summaries.append(MonthHotspots(month, len(history_rows), len(current), int(scored["tested"].sum()), len(hot)))
    found = pd.concat(scored_months, ignore_index=True) if scored_months else None
    _write(con, window, found)
    return HotspotRun(test, _with_top(con, window, summaries))


_FOUND_COLUMNS = ("month", "resolution", "rank", "h3_cell", "incidents", "baseline_mean", "history_months",
                  "expected", "ratio", "p_value", "threshold")


def _write(con: duckdb.DuckDBPyConnection, window: MonthWindow, found: pd.DataFrame | None) -> None:
    if found is None or found.empty:
        # "string", not object: DuckDB 1.5 reads an empty object column as INTEGER, and the join would cast.
        found = pd.DataFrame({c: pd.Series(dtype="float64" if c not in ("month", "h3_cell") else "string")
                              for c in _FOUND_COLUMNS})
    con.register("hotspots_found", found[list(_FOUND_COLUMNS)])
    try:
        replace_window(con, HOTSPOTS_TABLE, HOTSPOTS, f"""
            SELECT f.month, f.resolution::INTEGER AS resolution, f.rank::INTEGER AS rank, f.h3_cell, l.label,
                   f.incidents::BIGINT AS incidents, f.baseline_mean, f.history_months::INTEGER AS history_months,
                   f.expected, f.ratio, f.p_value, f.threshold,
                   s.dominant_primary_type, s.arrest_rate, s.pooled_arrest_rate
            FROM hotspots_found AS f
            LEFT JOIN {MONTHLY_STATS_TABLE} AS s USING (month, resolution, h3_cell)
            LEFT JOIN {CELL_LABELS_TABLE} AS l USING (month, resolution, h3_cell)""", window)
    finally:
        con.unregister("hotspots_found")


def _with_top(con: duckdb.DuckDBPyConnection, window: MonthWindow, summaries: list[MonthHotspots],
              limit: int = 10) -> list[MonthHotspots]:
    """The summaries with each month's first ``limit`` hotspots (ranks 1..n are the month's hotspots)."""
    rows = con.execute(
        f"SELECT month, rank, h3_cell, label, incidents, baseline_mean, p_value FROM {HOTSPOTS_TABLE}"
        " WHERE month BETWEEN $first AND $last AND rank <= $n ORDER BY month, rank",
        {**window.bounds, "n": limit}).fetchall()
    top: dict[str, list[tuple]] = {}
    for month, *rest in rows:
        top.setdefault(month, []).append(tuple(rest))
    return [MonthHotspots(**{**s.__dict__, "top": top[s.month]}) if s.month in top else s for s in summaries]


def map_inputs(con: duckdb.DuckDBPyConnection, window: MonthWindow, resolution: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the maps draw: every cell of the window's months at ``resolution`` (month, h3_cell, incidents,
    arrests, pooled_incidents, pooled_arrest_rate) and the hotspots found there (month, h3_cell, rank)."""
    bounds = {**window.bounds, "r": resolution}
    cells = con.execute(
        f"SELECT month, h3_cell, incidents, arrests, pooled_incidents, pooled_arrest_rate FROM {MONTHLY_STATS_TABLE}"
        " WHERE month BETWEEN $first AND $last AND resolution = $r", bounds).df()
    found = con.execute(
        f"SELECT month, h3_cell, rank FROM {HOTSPOTS_TABLE} WHERE month BETWEEN $first AND $last AND resolution = $r",
        bounds).df()
    return cells, found


def hotspot_resolution(con: duckdb.DuckDBPyConnection, window: MonthWindow) -> int | None:
    """The H3 resolution the window's months were tested at (the most common one), None without hotspots."""
    row = con.execute(
        f"SELECT resolution FROM {HOTSPOTS_TABLE} WHERE month BETWEEN $first AND $last"
        " GROUP BY resolution ORDER BY count(*) DESC, resolution LIMIT 1",
        window.bounds).fetchone()
    return None if row is None else int(row[0])


def hotspots_missing_from_stats(con: duckdb.DuckDBPyConnection, window: MonthWindow) -> list[tuple]:
    """(month, resolution, h3_cell) of hotspot rows without a row in h3_monthly_stats for the same month."""
    return con.execute(
        f"SELECT h.month, h.resolution, h.h3_cell FROM {HOTSPOTS_TABLE} AS h"
        f" ANTI JOIN {MONTHLY_STATS_TABLE} AS s USING (month, resolution, h3_cell)"
        " WHERE h.month BETWEEN $first AND $last ORDER BY 1, 2, 3",
        window.bounds).fetchall()
