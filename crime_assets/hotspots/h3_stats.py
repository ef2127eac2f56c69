"""The H3 gold tables: monthly cell statistics, daily cell counts and cell labels, resolutions 6-10.

Every table is built from the geolocated rows of ``incidents_enriched`` (``is_geolocated``), with
the rule of ``h3cells.py``: only the r10 cell comes from the coordinates, every coarser cell is its
parent. So at each resolution the cells' incidents sum to the month's geolocated incidents, and the
children of a cell sum to it. Only cells with at least one incident get a row.

Formulas of ``h3_monthly_stats`` (n incidents and k arrests in a cell and month):

- ``arrest_rate`` = k / n.
- Wilson 95% score interval (z = 1.959964), with p = k / n::

      centre = (p + z^2 / 2n) / (1 + z^2 / n)
      half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)
      [arrest_rate_lower, arrest_rate_upper] = [centre - half, centre + half]

  It stays inside [0, 1] and always contains p, unlike the normal approximation p +- z sqrt(p(1-p)/n),
  which collapses to a zero-width interval at k = 0 or k = n.
- Neighbour-pooled rate, over D = the cell and its ring-1 neighbours (``h3.grid_disk(cell, 1)``,
  7 cells, 6 around a pentagon), at the same resolution and month::

      pooled_arrest_rate = sum_{c in D} arrests(c) / sum_{c in D} incidents(c)

  i.e. the neighbours' rates weighted by their incidents (a neighbour without incidents adds
  nothing). It steadies the rate of a small cell with its surroundings without letting a
  neighbour with two incidents weigh as much as one with two hundred.
- ``is_low_confidence``: n < ``min_incidents`` or (upper - lower) > ``max_interval_width``.
- ``dominant_primary_type``: the most frequent primary type (ties: alphabetical), its share of n;
  ``domestic_share``: domestic incidents / n; ``<category>_incidents``: see ``crime_categories.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import h3.api.basic_int as h3int
import numpy as np
from pydantic import BaseModel, Field
import pandas as pd

from crime_assets.hotspots.community_areas import COMMUNITY_AREAS
from crime_assets.hotspots.crime_categories import CATEGORY_NAMES, category_of
from crime_assets.common.h3cells import register_macros
from crime_assets.common.months import MonthWindow
from crime_assets.common.schema import H3_RESOLUTIONS, Column, create_table_sql
from crime_assets.common.sql import sql, transaction

MONTHLY_STATS_TABLE = "h3_monthly_stats"
DAILY_COUNTS_TABLE = "h3_daily_counts"
CELL_LABELS_TABLE = "h3_cell_labels"

Z_95 = 1.959963984540054  # the normal quantile of 0.975

_MONTH = Column("month", "VARCHAR", "Partition key (YYYY-MM) of the incidents counted")
_RESOLUTION = Column("resolution", "INTEGER", "H3 resolution of the cell (6-10)")
_CELL = Column("h3_cell", "VARCHAR", "H3 cell id (hex string); every coarser cell is the parent of the incidents' r10 cell")

H3_MONTHLY_STATS = (
    _MONTH, _RESOLUTION, _CELL,
    Column("parent_cell", "VARCHAR", "The cell's parent at resolution - 1 (NULL at resolution 6)"),
    Column("incidents", "BIGINT", "Geolocated incidents in the cell and month"),
    Column("arrests", "BIGINT", "Of them, incidents with an arrest"),
    Column("arrest_rate", "DOUBLE", "arrests / incidents"),
    Column("arrest_rate_lower", "DOUBLE", "Lower bound of the Wilson 95% score interval of arrest_rate"),
    Column("arrest_rate_upper", "DOUBLE", "Upper bound of the Wilson 95% score interval of arrest_rate"),
    Column("pooled_incidents", "BIGINT", "Incidents in the cell and its ring-1 neighbours (same resolution and month)"),
    Column("pooled_arrests", "BIGINT", "Arrests in the cell and its ring-1 neighbours"),
    Column("pooled_arrest_rate", "DOUBLE",
           "Neighbour-pooled arrest rate: pooled_arrests / pooled_incidents (neighbours weighted by their incidents)"),
    Column("neighbours_with_incidents", "INTEGER", "How many of the ring-1 neighbours (0-6) had incidents"),
    Column("is_low_confidence", "BOOLEAN",
           "Too few incidents or too wide an interval to read arrest_rate alone (thresholds: run config)"),
    Column("dominant_primary_type", "VARCHAR", "Most frequent primary type (ties: alphabetical)"),
    Column("dominant_type_share", "DOUBLE", "Share of the incidents that are of the dominant primary type"),
    Column("domestic_incidents", "BIGINT", "Domestic-related incidents"),
    Column("domestic_share", "DOUBLE", "domestic_incidents / incidents"),
    *(Column(f"{name}_incidents", "BIGINT", f"Incidents in the '{name}' crime category (see crime_categories.py)")
      for name in CATEGORY_NAMES),
)

H3_DAILY_COUNTS = (
    _MONTH,
    Column("day", "DATE", "Local calendar day of occurred_at"),
    _RESOLUTION, _CELL,
    Column("incidents", "BIGINT", "Geolocated incidents in the cell that day"),
    Column("arrests", "BIGINT", "Of them, incidents with an arrest"),
)

H3_CELL_LABELS = (
    _MONTH, _RESOLUTION, _CELL,
    Column("incidents", "BIGINT", "Geolocated incidents in the cell and month (what the names were counted on)"),
    Column("top_block", "VARCHAR", "Most frequent block (partially redacted address, e.g. 001XX N STATE ST)"),
    Column("top_block_share", "DOUBLE", "Share of the cell's incidents at that block"),
    Column("blocks", "INTEGER", "Distinct blocks with incidents in the cell"),
    Column("district", "INTEGER", "Most frequent police district"),
    Column("beat", "INTEGER", "Most frequent police beat"),
    Column("ward", "INTEGER", "Most frequent city council ward"),
    Column("community_area", "INTEGER", "Most frequent community area (number)"),
    Column("community_area_name", "VARCHAR", "Its name, e.g. Loop, Austin"),
    Column("label", "VARCHAR", "'<top block>, <community area>, district <n>', e.g. '001XX N STATE ST, Loop, district 1'"),
)


class ConfidenceRule(BaseModel, frozen=True):
    """When a cell's arrest rate is too uncertain to read alone (is_low_confidence). Also the run config of
    h3_monthly_stats."""

    min_incidents: int = Field(default=20, ge=1, description="Flag cells with fewer incidents than this in the month")
    max_interval_width: float = Field(
        default=0.3, gt=0.0, le=1.0, description="Flag cells whose Wilson 95% interval is wider than this (upper - lower)")


def wilson_interval(arrests: int, incidents: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of arrests / incidents, computed by the SQL the tables use."""
    with duckdb.connect() as con:
        register_macros(con)
        return con.execute("SELECT wilson_lower($k, $n, $z), wilson_upper($k, $n, $z)",
                           {"k": arrests, "n": incidents, "z": z}).fetchone()


@lru_cache(maxsize=1 << 18)
def _disk(cell: int) -> tuple[int, ...]:
    return tuple(h3int.grid_disk(cell, 1))


def ring1_disks(cells: np.ndarray) -> np.ndarray:
    """For each cell (H3 ids as uint64), the 7 cells of its disk of radius 1, itself included; a pentagon's
    disk has 6 and its row ends with a 0. Disks are cached: a backfill meets the same cells every month."""
    disks = np.zeros((len(cells), 7), dtype=np.uint64)
    for i, cell in enumerate(np.asarray(cells, dtype=np.uint64).tolist()):
        disk = _disk(cell)
        disks[i, :len(disk)] = disk
    return disks


def ring1_pooled(months: np.ndarray, cells: np.ndarray, incidents: np.ndarray, arrests: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (a cell with incidents in a month; rows sorted by month, then cell): the incidents and arrests
    summed over the cell and its ring-1 neighbours in the same month, and how many neighbours had incidents.
    A neighbour without a row had no incidents. Cells of different resolutions may be mixed: a disk only
    holds cells of its centre's resolution."""
    cells, months = np.asarray(cells, dtype=np.uint64), np.asarray(months)
    incidents, arrests = np.asarray(incidents, dtype=np.int64), np.asarray(arrests, dtype=np.int64)
    if not len(cells):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    # a flattened dense grid per count: row r sits at month_of[r] * width + cell_of[r]; the last column of
    # each month stays empty and stands for every neighbour without incidents (and a pentagon's missing 7th)
    month_of = np.cumsum(np.r_[False, months[1:] != months[:-1]])
    distinct, cell_of = np.unique(cells, return_inverse=True)
    if np.any(np.diff(month_of * (len(distinct) + 1) + cell_of) <= 0):
        raise ValueError("rows must be sorted by month, then cell, without repeats")
    disks = ring1_disks(distinct)
    members = np.minimum(np.searchsorted(distinct, disks), len(distinct) - 1)
    members[(distinct[members] != disks) | (disks == 0)] = len(distinct)
    width = len(distinct) + 1
    at = (month_of * width)[:, None] + members[cell_of]  # (rows, 7) places in a flattened grid
    pooled = []
    for values in (incidents, arrests, np.ones(len(cells), dtype=np.int64)):
        grid = np.zeros((month_of[-1] + 1) * width, dtype=np.int64)
        grid[month_of * width + cell_of] = values
        pooled.append(np.take(grid, at).sum(axis=1))
    return pooled[0], pooled[1], (pooled[2] - 1).astype(np.int32)


def primary_types_frame(primary_types: Iterable[str | None]) -> pd.DataFrame:
    """Each primary type with an id in alphabetical order (a missing type last) and its crime category's
    place in CATEGORY_NAMES."""
    ordered = sorted(set(primary_types), key=lambda t: (t is None, t or ""))
    return pd.DataFrame({
        "primary_type": pd.Series(ordered, dtype=object),
        "type_id": np.arange(len(ordered), dtype=np.int32),
        "category_id": np.array([CATEGORY_NAMES.index(category_of(t)) for t in ordered], dtype=np.int32),
    })


def add_parent_rows(con: duckdb.DuckDBPyConnection, table: str, keys: tuple[str, ...], sums: tuple[str, ...]) -> None:
    """Complete a temp table of r10 rows (month, resolution, cell, *keys, *sums) with r9 down to r6: each
    resolution's rows are the finer one's summed under the parent cell. Each step reads only the rows of
    the resolution just below, so it costs less than grouping every incident at every resolution."""
    columns = ", ".join([*keys, *(f"sum({c})::BIGINT AS {c}" for c in sums)])
    for resolution in sorted(H3_RESOLUTIONS, reverse=True)[1:]:
        con.execute(
            f"INSERT INTO {table} SELECT month, {resolution} AS resolution, h3_parent_bits(cell, {resolution}) AS cell,"
            f" {columns} FROM {table} WHERE resolution = {resolution + 1} GROUP BY ALL")


def replace_window(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[Column, ...], select_sql: str,
                   window: MonthWindow, params: dict | None = None) -> None:
    """Replace the window's months of ``table`` by the rows of ``select_sql``, in one transaction."""
    names = ", ".join(c.name for c in columns)
    con.execute(create_table_sql(table, columns))
    with transaction(con):
        con.execute(f"DELETE FROM {table} WHERE month BETWEEN $first AND $last", window.bounds)
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM ({select_sql})", params or {})


def rows_by_resolution(con: duckdb.DuckDBPyConnection, table: str, window: MonthWindow) -> dict[int, int]:
    """The window's rows of ``table`` per H3 resolution."""
    return dict(con.execute(f"SELECT resolution, count(*) FROM {table} WHERE month BETWEEN $first AND $last"
                            " GROUP BY resolution ORDER BY resolution", window.bounds).fetchall())


def _category_counts_sql() -> str:
    return ",\n    ".join(
        f"coalesce(sum(incidents) FILTER (category_id = {i}), 0)::BIGINT AS {name}_incidents"
        for i, name in enumerate(CATEGORY_NAMES)
    )


@dataclass(frozen=True)
class MonthlyStatsSummary:
    rows: int
    cells_by_resolution: dict[int, int]
    low_confidence_share_by_resolution: dict[int, float]
    by_month: list[tuple]  # (month, geolocated incidents, arrests, r8 cells)

    @property
    def incidents(self) -> int:
        return sum(m[1] for m in self.by_month)

    @property
    def arrest_rate(self) -> float:
        return sum(m[2] for m in self.by_month) / self.incidents if self.incidents else 0.0


def build_monthly_stats(con: duckdb.DuckDBPyConnection, window: MonthWindow,
                        rule: ConfidenceRule = ConfidenceRule()) -> MonthlyStatsSummary:
    """Replace the window's months of h3_monthly_stats (formulas: module docstring)."""
    register_macros(con)
    types = con.execute("SELECT DISTINCT primary_type FROM incidents_enriched WHERE month BETWEEN $first AND $last",
                        window.bounds).fetchall()
    try:
        con.register("h3_types", primary_types_frame(row[0] for row in types))
        con.execute(sql("h3_cell_types"), window.bounds)
        add_parent_rows(con, "h3_cell_types", ("type_id", "category_id"), ("incidents", "arrests", "domestic_incidents"))
        con.execute(sql("h3_cell_totals").replace("CATEGORY_COUNTS", _category_counts_sql()))
        totals = con.execute("SELECT month, cell, incidents, arrests FROM h3_cell_totals ORDER BY month, cell").fetchnumpy()
        pooled_incidents, pooled_arrests, neighbours = ring1_pooled(
            totals["month"], totals["cell"], totals["incidents"], totals["arrests"])
        con.register("h3_pooled", pd.DataFrame({
            "month": totals["month"], "cell": totals["cell"], "pooled_incidents": pooled_incidents,
            "pooled_arrests": pooled_arrests, "neighbours_with_incidents": neighbours}))
        replace_window(con, MONTHLY_STATS_TABLE, H3_MONTHLY_STATS, sql("h3_monthly_stats"), window, {
            "z": Z_95, "min_incidents": rule.min_incidents, "max_interval_width": rule.max_interval_width})
    finally:
        con.unregister("h3_pooled")
        con.unregister("h3_types")
        con.execute("DROP TABLE IF EXISTS h3_cell_types; DROP TABLE IF EXISTS h3_cell_totals")
    return _stats_summary(con, window)


def _stats_summary(con: duckdb.DuckDBPyConnection, window: MonthWindow) -> MonthlyStatsSummary:
    per_resolution = con.execute(
        f"SELECT resolution, count(*), avg(is_low_confidence::INTEGER) FROM {MONTHLY_STATS_TABLE}"
        " WHERE month BETWEEN $first AND $last GROUP BY resolution ORDER BY resolution", window.bounds).fetchall()
    by_month = con.execute(
        f"SELECT month, sum(incidents)::BIGINT, sum(arrests)::BIGINT, count(*) FROM {MONTHLY_STATS_TABLE}"
        " WHERE month BETWEEN $first AND $last AND resolution = 8 GROUP BY month ORDER BY month", window.bounds).fetchall()
    return MonthlyStatsSummary(
        rows=sum(r[1] for r in per_resolution),
        cells_by_resolution={r: n for r, n, _ in per_resolution},
        low_confidence_share_by_resolution={r: round(share, 4) for r, _, share in per_resolution},
        by_month=by_month,
    )


@dataclass(frozen=True)
class DailyCountsSummary:
    rows: int
    days: int
    rows_by_resolution: dict[int, int]
    busiest_day: tuple | None  # (day, incidents)


def build_daily_counts(con: duckdb.DuckDBPyConnection, window: MonthWindow) -> DailyCountsSummary:
    """Replace the window's months of h3_daily_counts: incidents and arrests per cell per day."""
    register_macros(con)
    try:
        con.execute(sql("h3_daily_rows"), window.bounds)
        add_parent_rows(con, "h3_daily_rows", ("day",), ("incidents", "arrests"))
        replace_window(con, DAILY_COUNTS_TABLE, H3_DAILY_COUNTS,
                       "SELECT month, day, resolution, h3_hex(cell) AS h3_cell, incidents, arrests FROM h3_daily_rows",
                       window)
    finally:
        con.execute("DROP TABLE IF EXISTS h3_daily_rows")
    by_resolution = rows_by_resolution(con, DAILY_COUNTS_TABLE, window)
    days, busiest = con.execute(
        f"SELECT count(*), arg_max(struct_pack(day, incidents), incidents) FROM ("
        f" SELECT day, sum(incidents) AS incidents FROM {DAILY_COUNTS_TABLE}"
        "  WHERE month BETWEEN $first AND $last AND resolution = 6 GROUP BY day)", window.bounds).fetchone()
    return DailyCountsSummary(sum(by_resolution.values()), days, by_resolution,
                              (busiest["day"], busiest["incidents"]) if busiest else None)


@dataclass(frozen=True)
class CellLabelsSummary:
    rows: int
    labelled_share: float  # cells with a block, a community area and a district
    examples: list[tuple]  # (month, h3_cell, incidents, label): the busiest r8 cells of the last month


def build_cell_labels(con: duckdb.DuckDBPyConnection, window: MonthWindow) -> CellLabelsSummary:
    """Replace the window's months of h3_cell_labels: each cell's most frequent block, district, beat,
    ward and community area, and a label like '001XX N STATE ST, Loop, district 1'."""
    register_macros(con)
    names = pd.DataFrame({"community_area": list(COMMUNITY_AREAS), "name": list(COMMUNITY_AREAS.values())})
    try:
        con.execute(sql("h3_blocks"), window.bounds)
        con.execute(sql("h3_label_blocks"), window.bounds)
        add_parent_rows(con, "h3_label_blocks", ("block_id",), ("n",))
        con.execute(sql("h3_label_areas"), window.bounds)
        add_parent_rows(con, "h3_label_areas", ("district", "beat", "ward", "community_area"), ("n",))
        con.register("community_area_names", names)
        replace_window(con, CELL_LABELS_TABLE, H3_CELL_LABELS, sql("h3_cell_labels"), window)
    finally:
        con.unregister("community_area_names")
        con.execute("DROP TABLE IF EXISTS h3_label_blocks; DROP TABLE IF EXISTS h3_label_areas;"
                    " DROP TABLE IF EXISTS h3_blocks")
    rows, labelled = con.execute(
        f"SELECT count(*), avg((top_block IS NOT NULL AND community_area_name IS NOT NULL"
        f" AND district IS NOT NULL)::INTEGER) FROM {CELL_LABELS_TABLE} WHERE month BETWEEN $first AND $last",
        window.bounds).fetchone()
    examples = con.execute(
        f"SELECT month, h3_cell, incidents, label FROM {CELL_LABELS_TABLE}"
        " WHERE month = $last AND resolution = 8 ORDER BY incidents DESC, h3_cell LIMIT 5",
        {"last": window.keys[-1]}).fetchall()
    return CellLabelsSummary(rows, round(labelled or 0.0, 4), examples)


# ---- quality gates: each returns the offending rows (empty: the rule holds) ----

def count_conservation_violations(con: duckdb.DuckDBPyConnection, window: MonthWindow,
                                  table: str = MONTHLY_STATS_TABLE, with_arrests: bool = True) -> list[tuple]:
    """(month, resolution, cell incidents, geolocated incidents, cell arrests, geolocated arrests) wherever,
    at some resolution, the cells of ``table`` do not add up to the month's geolocated incidents (and
    arrests). A resolution with no rows for a month that has geolocated incidents is a violation too."""
    arrests = "arrests" if with_arrests else "0"
    return con.execute(f"""
        WITH truth AS (
            SELECT month, count(*) AS incidents, {"count(*) FILTER (arrest)" if with_arrests else "0"} AS arrests
            FROM incidents_enriched WHERE is_geolocated AND month BETWEEN $first AND $last GROUP BY month
        ), expected AS (
            SELECT t.*, r.resolution FROM truth AS t CROSS JOIN (SELECT unnest({list(H3_RESOLUTIONS)}) AS resolution) AS r
        ), cells AS (
            SELECT month, resolution, sum(incidents) AS incidents, sum({arrests}) AS arrests
            FROM {table} WHERE month BETWEEN $first AND $last AND h3_cell IS NOT NULL GROUP BY ALL
        )
        SELECT coalesce(e.month, c.month) AS month, coalesce(e.resolution, c.resolution) AS resolution,
               coalesce(c.incidents, 0), coalesce(e.incidents, 0), coalesce(c.arrests, 0), coalesce(e.arrests, 0)
        FROM expected AS e FULL JOIN cells AS c USING (month, resolution)
        WHERE coalesce(c.incidents, 0) <> coalesce(e.incidents, 0) OR coalesce(c.arrests, 0) <> coalesce(e.arrests, 0)
        ORDER BY 1, 2""", window.bounds).fetchall()


def parent_sum_violations(con: duckdb.DuckDBPyConnection, window: MonthWindow, limit: int = 20) -> tuple[int, list[tuple]]:
    """Cells whose children (the cells one resolution finer naming it as parent_cell) do not sum to its
    incidents and arrests, plus children whose parent_cell is not the H3 parent or has no row.
    Returns (how many, up to ``limit`` of them as (month, resolution, parent_cell, problem))."""
    rows = con.execute(f"""
        WITH stats AS (SELECT * FROM {MONTHLY_STATS_TABLE} WHERE month BETWEEN $first AND $last),
        children AS (
            SELECT month, resolution - 1 AS resolution, parent_cell AS h3_cell,
                   sum(incidents) AS incidents, sum(arrests) AS arrests
            FROM stats WHERE resolution > {min(H3_RESOLUTIONS)} GROUP BY ALL
        )
        SELECT month, resolution, h3_cell,
               CASE WHEN p.h3_cell IS NULL THEN 'children point to a parent without a row'
                    WHEN c.h3_cell IS NULL THEN 'no children'
                    ELSE 'children sum to ' || c.incidents || ' incidents, ' || c.arrests || ' arrests; parent has '
                         || p.incidents || ', ' || p.arrests END AS problem
        FROM (SELECT * FROM stats WHERE resolution < {max(H3_RESOLUTIONS)}) AS p
        FULL JOIN children AS c USING (month, resolution, h3_cell)
        WHERE p.h3_cell IS NULL OR c.h3_cell IS NULL OR p.incidents <> c.incidents OR p.arrests <> c.arrests
        ORDER BY month, resolution, h3_cell""", window.bounds).fetchall()
    register_macros(con)
    bad = con.execute(f"""
        SELECT month, resolution, h3_cell, 'parent_cell ' || coalesce(parent_cell, 'NULL') || ' is not the H3 parent'
        FROM {MONTHLY_STATS_TABLE}
        WHERE month BETWEEN $first AND $last AND resolution > {min(H3_RESOLUTIONS)}
          AND parent_cell IS DISTINCT FROM h3_hex(h3_parent_bits(h3_bits(h3_cell), resolution - 1))
        ORDER BY month, resolution, h3_cell""", window.bounds).fetchall()
    found = rows + bad
    return len(found), found[:limit]


def rate_bound_violations(con: duckdb.DuckDBPyConnection, window: MonthWindow, limit: int = 20) -> tuple[int, list[tuple]]:
    """Rows where a rate, share or interval bound is NULL or outside [0, 1], or lower <= rate <= upper fails.
    Returns (how many, up to ``limit`` of them as (month, resolution, h3_cell, rate, lower, upper, pooled))."""
    condition = " OR ".join([
        *(f"{c} IS NULL OR {c} < 0 OR {c} > 1" for c in (
            "arrest_rate", "arrest_rate_lower", "arrest_rate_upper", "pooled_arrest_rate",
            "dominant_type_share", "domestic_share")),
        "arrest_rate_lower > arrest_rate", "arrest_rate > arrest_rate_upper",
    ])
    query = (f"SELECT month, resolution, h3_cell, arrest_rate, arrest_rate_lower, arrest_rate_upper, pooled_arrest_rate"
             f" FROM {MONTHLY_STATS_TABLE} WHERE month BETWEEN $first AND $last AND ({condition})")
    count = con.execute(f"SELECT count(*) FROM ({query})", window.bounds).fetchone()[0]
    return count, con.execute(f"{query} ORDER BY month, resolution, h3_cell LIMIT {int(limit)}", window.bounds).fetchall()


def label_coverage_violations(con: duckdb.DuckDBPyConnection, window: MonthWindow) -> list[tuple]:
    """(month, resolution, problem) wherever h3_cell_labels does not hold exactly one row per cell with
    geolocated incidents: a cell labelled twice, or labels whose incidents do not add up to the month's
    geolocated incidents (a cell left out, or one that has none)."""
    duplicates = con.execute(
        f"SELECT month, resolution, (count(*) - count(DISTINCT h3_cell)) || ' cells labelled more than once'"
        f" FROM {CELL_LABELS_TABLE} WHERE month BETWEEN $first AND $last GROUP BY ALL"
        " HAVING count(*) > count(DISTINCT h3_cell) ORDER BY 1, 2", window.bounds).fetchall()
    sums = [(month, resolution, f"labelled cells hold {cells} incidents, the month has {truth} geolocated")
            for month, resolution, cells, truth, _, _ in
            count_conservation_violations(con, window, CELL_LABELS_TABLE, with_arrests=False)]
    return sorted(duplicates + sums)
