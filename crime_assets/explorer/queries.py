"""The explorer's reads: plain functions of a DuckDB connection and a Scope, over the gold tables only.

- Every incident of the scope (no category or type chosen): h3_monthly_stats, whose counts, neighbour-pooled
  counts and rates the hotspot layer computed; summing months is exact for all of them.
- A category or a primary type: h3_hourly_counts (per cell, day, hour and primary type), summed over the
  scope; the neighbour-pooled rate is then pooled over the same ring-1 disks (``h3_stats.ring1_pooled``).
- Rates of a sum of months get their Wilson 95% interval and low-confidence flag from the same SQL macros
  and default thresholds (``ConfidenceRule``) as h3_monthly_stats; for one month and every incident they are
  its stored values.
- Names come from h3_cell_labels (the latest month of the range in which the cell had incidents), hotspot
  ranks from ``hotspots`` of the range's last month.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import h3
import numpy as np
import pandas as pd

from crime_assets.hotspots.crime_categories import CATEGORY_NAMES
from crime_assets.hotspots.h3_hourly import HOURLY_COUNTS_TABLE
from crime_assets.hotspots.h3_stats import CELL_LABELS_TABLE, MONTHLY_STATS_TABLE, Z_95, ConfidenceRule, ring1_pooled
from crime_assets.common.h3cells import register_macros
from crime_assets.hotspots.hotspots import HOTSPOTS_TABLE
from crime_assets.explorer.places import CellNames
from crime_assets.explorer.scope import COARSEST, FINEST, Scope

# (table, the asset that writes it), in the order they are worth materialising.
REQUIRED_TABLES = (
    (MONTHLY_STATS_TABLE, "h3_monthly_stats"),
    (CELL_LABELS_TABLE, "h3_cell_labels"),
    (HOURLY_COUNTS_TABLE, "h3_daily_counts"),
)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
RULE = ConfidenceRule()


def missing_data(con: duckdb.DuckDBPyConnection) -> str | None:
    """What to materialise first, or None when every table the explorer reads has rows."""
    present = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for table, asset in REQUIRED_TABLES:
        empty = table not in present or not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)").fetchall()[0][0]
        if empty:
            writes = f" (it writes {table})" if table != asset else ""
            return (f"The warehouse has no {table} yet: materialise the `{asset}` asset first{writes}, with what it "
                    f"depends on, e.g. `dagster asset materialize -m crime_assets.definitions --select '+{asset}' "
                    "--partition-range 2016-01...2016-12`, or run `python -m crime_assets.quickstart`.")
    return None


def available_months(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Months every table the explorer reads holds, oldest first."""
    rows = con.execute(f"""
        SELECT DISTINCT month FROM {MONTHLY_STATS_TABLE} WHERE resolution = {COARSEST}
        INTERSECT SELECT DISTINCT month FROM {CELL_LABELS_TABLE} WHERE resolution = {COARSEST}
        INTERSECT SELECT DISTINCT month FROM {HOURLY_COUNTS_TABLE} WHERE resolution = {COARSEST}
        ORDER BY month""").fetchall()
    return [r[0] for r in rows]


def primary_types(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every primary type with its category (columns primary_type, category), by category then name."""
    return con.execute(f"""
        SELECT DISTINCT primary_type, category FROM {HOURLY_COUNTS_TABLE}
        WHERE resolution = {COARSEST} AND primary_type IS NOT NULL ORDER BY category, primary_type""").df()


def _months(scope: Scope) -> dict:
    return {"first": scope.first, "last": scope.last}


def _type_filter(scope: Scope) -> tuple[str, dict]:
    if scope.primary_type is not None:
        return "primary_type = $primary_type", {"primary_type": scope.primary_type}
    if scope.category is not None:
        return "category = $category", {"category": scope.category}
    return "true", {}


def _place_filter(scope: Scope) -> tuple[str, dict]:
    """The hourly rows of the scope's place: its own cell, or every r6 cell for the whole city."""
    if scope.place is None:
        return f"resolution = {COARSEST}", {}
    return "resolution = $place_resolution AND h3_cell = $place", {
        "place_resolution": scope.place_resolution, "place": scope.place}


def _hourly_where(scope: Scope) -> tuple[str, dict]:
    place, place_params = _place_filter(scope)
    types, type_params = _type_filter(scope)
    return (f"month BETWEEN $first AND $last AND {place} AND {types}", {**_months(scope), **place_params, **type_params})


def view_cells(scope: Scope) -> list[str] | None:
    """The cells the map may show: the place's children (the place itself at r10); None: every cell."""
    if scope.place is None:
        return None
    if scope.place_resolution == FINEST:
        return [scope.place]
    return sorted(h3.cell_to_children(scope.place, scope.view_resolution))


def _cell_counts(con: duckdb.DuckDBPyConnection, scope: Scope) -> pd.DataFrame:
    """h3_cell, incidents, arrests, pooled_incidents, pooled_arrests of the map's cells."""
    r = scope.view_resolution
    cells = view_cells(scope)
    if not scope.is_filtered:
        where, params = "", {}
        if cells is not None:
            where, params = "AND h3_cell IN (SELECT unnest($cells))", {"cells": cells}
        return con.execute(f"""
            SELECT h3_cell, sum(incidents)::BIGINT AS incidents, sum(arrests)::BIGINT AS arrests,
                   sum(pooled_incidents)::BIGINT AS pooled_incidents, sum(pooled_arrests)::BIGINT AS pooled_arrests
            FROM {MONTHLY_STATS_TABLE}
            WHERE resolution = {r} AND month BETWEEN $first AND $last {where}
            GROUP BY h3_cell ORDER BY h3_cell""", {**_months(scope), **params}).df()
    # The pooled rate needs the neighbours too, so the whole resolution is summed, then cut to the view.
    types, type_params = _type_filter(scope)
    totals = con.execute(f"""
        SELECT h3_cell, sum(incidents)::BIGINT AS incidents, sum(arrests)::BIGINT AS arrests
        FROM {HOURLY_COUNTS_TABLE}
        WHERE resolution = {r} AND month BETWEEN $first AND $last AND {types}
        GROUP BY h3_cell""", {**_months(scope), **type_params}).df()
    if totals.empty:
        return totals.assign(pooled_incidents=pd.Series(dtype="int64"), pooled_arrests=pd.Series(dtype="int64"))
    bits = np.array([int(c, 16) for c in totals["h3_cell"]], dtype=np.uint64)
    order = np.argsort(bits)
    totals = totals.iloc[order].reset_index(drop=True)
    pooled_incidents, pooled_arrests, _ = ring1_pooled(
        np.zeros(len(totals), dtype=np.int64), bits[order], totals["incidents"].to_numpy(), totals["arrests"].to_numpy())
    totals["pooled_incidents"], totals["pooled_arrests"] = pooled_incidents, pooled_arrests
    if cells is not None:
        totals = totals[totals["h3_cell"].isin(cells)]
    return totals.sort_values("h3_cell").reset_index(drop=True)


def _rates_sql(alias: str = "") -> str:
    """Arrest rate, Wilson interval and low-confidence flag of columns incidents and arrests."""
    p = f"{alias}." if alias else ""
    lower, upper = (f"wilson_{end}({p}arrests, {p}incidents, {Z_95})" for end in ("lower", "upper"))
    return (f"{p}arrests / {p}incidents AS arrest_rate, {lower} AS arrest_rate_lower, {upper} AS arrest_rate_upper, "
            f"{p}incidents < {RULE.min_incidents} OR {upper} - {lower} > {RULE.max_interval_width} AS is_low_confidence")


def map_cells(con: duckdb.DuckDBPyConnection, scope: Scope) -> pd.DataFrame:
    """The map's cells with their counts, rates, names and this month's hotspot rank, busiest first.

    Columns: h3_cell, incidents, arrests, arrest_rate, arrest_rate_lower, arrest_rate_upper,
    is_low_confidence, pooled_incidents, pooled_arrests, pooled_arrest_rate, label, top_block, district,
    community_area_name, hotspot_rank (NULL: not a hotspot of the range's last month at this resolution)."""
    register_macros(con)
    counts = _cell_counts(con, scope)
    con.register("explorer_cells", counts)
    try:
        return con.execute(f"""
            WITH names AS (
                SELECT h3_cell, arg_max(struct_pack(label, top_block, district, community_area_name), month) AS n
                FROM {CELL_LABELS_TABLE}
                WHERE resolution = $r AND month BETWEEN $first AND $last
                  AND h3_cell IN (SELECT h3_cell FROM explorer_cells)
                GROUP BY h3_cell
            ), ranks AS (
                SELECT h3_cell, min(rank) AS hotspot_rank FROM {HOTSPOTS_TABLE}
                WHERE month = $last AND resolution = $r GROUP BY h3_cell
            )
            SELECT c.h3_cell, c.incidents, c.arrests, {_rates_sql("c")},
                   c.pooled_incidents, c.pooled_arrests, c.pooled_arrests / c.pooled_incidents AS pooled_arrest_rate,
                   names.n.label AS label, names.n.top_block AS top_block, names.n.district AS district,
                   names.n.community_area_name AS community_area_name, ranks.hotspot_rank
            FROM explorer_cells AS c
            LEFT JOIN names USING (h3_cell)
            LEFT JOIN ranks USING (h3_cell)
            WHERE c.incidents > 0
            ORDER BY c.incidents DESC, c.h3_cell""", {**_months(scope), "r": scope.view_resolution}).df()
    finally:
        con.unregister("explorer_cells")


def _ensure_hotspots_table(con: duckdb.DuckDBPyConnection) -> None:
    present = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if HOTSPOTS_TABLE not in present:
        # No hotspots materialised yet: an empty table of the same shape, for this connection only.
        con.execute(f"CREATE TEMP TABLE {HOTSPOTS_TABLE} (month VARCHAR, resolution INTEGER, rank INTEGER, h3_cell VARCHAR)")


@dataclass(frozen=True)
class Totals:
    incidents: int
    arrests: int
    arrest_rate: float | None
    arrest_rate_lower: float | None
    arrest_rate_upper: float | None


def place_totals(con: duckdb.DuckDBPyConnection, scope: Scope) -> Totals:
    """Incidents, arrests and the arrest rate with its Wilson interval over the scope's place."""
    register_macros(con)
    if scope.is_filtered:
        where, params = _hourly_where(scope)
        source = f"SELECT incidents, arrests FROM {HOURLY_COUNTS_TABLE} WHERE {where}"
    else:
        place = f"resolution = {COARSEST}" if scope.place is None else "h3_cell = $place"
        params = {**_months(scope), **({} if scope.place is None else {"place": scope.place})}
        source = f"SELECT incidents, arrests FROM {MONTHLY_STATS_TABLE} WHERE month BETWEEN $first AND $last AND {place}"
    row = con.execute(f"""
        WITH t AS (SELECT coalesce(sum(incidents), 0)::BIGINT AS incidents, coalesce(sum(arrests), 0)::BIGINT AS arrests
                   FROM ({source}))
        SELECT incidents, arrests, CASE WHEN incidents > 0 THEN arrests / incidents END,
               wilson_lower(arrests, incidents, {Z_95}), wilson_upper(arrests, incidents, {Z_95}) FROM t""",
                      params).fetchall()[0]
    return Totals(*row)


@dataclass(frozen=True)
class Kpis:
    current: Totals
    previous: Totals | None  # None: the warehouse lacks some month of the previous period
    previous_months: tuple[str, str]
    busiest: dict | None  # the map's busiest cell: h3_cell, label, incidents

    @property
    def change(self) -> float | None:
        """Relative change of the incidents against the previous period."""
        if self.previous is None or not self.previous.incidents:
            return None
        return self.current.incidents / self.previous.incidents - 1


def kpis(con: duckdb.DuckDBPyConnection, scope: Scope, cells: pd.DataFrame, months: list[str]) -> Kpis:
    """The scope's totals, the previous period's (when the warehouse holds all its months) and the busiest cell
    of ``cells`` (map_cells)."""
    previous = scope.previous()
    held = set(months)
    previous_totals = place_totals(con, previous) if all(m in held for m in previous.months) else None
    busiest = None
    if not cells.empty:
        top = cells.iloc[0]
        busiest = {"h3_cell": top["h3_cell"], "label": top["label"], "incidents": int(top["incidents"])}
    return Kpis(place_totals(con, scope), previous_totals, (previous.first, previous.last), busiest)


def daily_by_category(con: duckdb.DuckDBPyConnection, scope: Scope) -> pd.DataFrame:
    """Incidents per day and crime category over the place (day, category, incidents)."""
    where, params = _hourly_where(scope)
    return con.execute(f"""
        SELECT day, category, sum(incidents)::BIGINT AS incidents FROM {HOURLY_COUNTS_TABLE}
        WHERE {where} GROUP BY ALL ORDER BY day, category""", params).df()


def by_hour(con: duckdb.DuckDBPyConnection, scope: Scope) -> pd.DataFrame:
    """Incidents and arrests per hour of day (0-23, every hour listed) over the place."""
    where, params = _hourly_where(scope)
    return con.execute(f"""
        WITH h AS (SELECT hour, sum(incidents)::BIGINT AS incidents, sum(arrests)::BIGINT AS arrests
                   FROM {HOURLY_COUNTS_TABLE} WHERE {where} GROUP BY hour)
        SELECT r.hour::INTEGER AS hour, coalesce(h.incidents, 0)::BIGINT AS incidents, coalesce(h.arrests, 0)::BIGINT AS arrests
        FROM range(24) AS r(hour) LEFT JOIN h ON h.hour = r.hour ORDER BY r.hour""", params).df()


def by_weekday(con: duckdb.DuckDBPyConnection, scope: Scope) -> pd.DataFrame:
    """Incidents and arrests per day of week (weekday 1 = Monday ... 7 = Sunday, every day listed; name)."""
    where, params = _hourly_where(scope)
    frame = con.execute(f"""
        WITH d AS (SELECT isodow(day) AS weekday, sum(incidents)::BIGINT AS incidents, sum(arrests)::BIGINT AS arrests
                   FROM {HOURLY_COUNTS_TABLE} WHERE {where} GROUP BY ALL)
        SELECT r.weekday::INTEGER AS weekday, coalesce(d.incidents, 0)::BIGINT AS incidents,
               coalesce(d.arrests, 0)::BIGINT AS arrests
        FROM range(1, 8) AS r(weekday) LEFT JOIN d ON d.weekday = r.weekday ORDER BY r.weekday""", params).df()
    frame["name"] = [WEEKDAYS[d - 1] for d in frame["weekday"]]
    return frame


def arrest_share(con: duckdb.DuckDBPyConnection, scope: Scope, limit: int = 12) -> pd.DataFrame:
    """Arrest rate with its Wilson interval per crime category over the place; per primary type (the busiest
    ``limit``) once a category or a type is chosen. Columns: group, incidents, arrests, rate columns."""
    register_macros(con)
    where, params = _hourly_where(scope)
    group = "primary_type" if scope.is_filtered else "category"
    frame = con.execute(f"""
        WITH g AS (SELECT coalesce({group}, '(none)') AS "group", sum(incidents)::BIGINT AS incidents,
                          sum(arrests)::BIGINT AS arrests
                   FROM {HOURLY_COUNTS_TABLE} WHERE {where} GROUP BY ALL)
        SELECT "group", incidents, arrests, {_rates_sql()} FROM g
        ORDER BY incidents DESC, "group" LIMIT {int(limit)}""", params).df()
    if group == "category":
        order = {name: i for i, name in enumerate(CATEGORY_NAMES)}
        frame = frame.sort_values("group", key=lambda s: s.map(order)).reset_index(drop=True)
    return frame


def path_names(con: duckdb.DuckDBPyConnection, scope: Scope) -> list[CellNames]:
    """The names of each drilled cell (latest month of the range that has them)."""
    if not scope.path:
        return []
    rows = con.execute(f"""
        SELECT h3_cell, arg_max(struct_pack(label, top_block, district, community_area_name), month) AS n
        FROM {CELL_LABELS_TABLE}
        WHERE month BETWEEN $first AND $last AND h3_cell IN (SELECT unnest($cells))
        GROUP BY h3_cell""", {**_months(scope), "cells": list(scope.path)}).fetchall()
    found = {cell: n for cell, n in rows}
    return [CellNames(cell, h3.get_resolution(cell), **(found.get(cell) or {})) for cell in scope.path]


def hotspot_resolution(con: duckdb.DuckDBPyConnection, month: str) -> int | None:
    """The resolution the hotspots of ``month`` were tested at (None: none found or not tested)."""
    rows = con.execute(f"SELECT min(resolution) FROM {HOTSPOTS_TABLE} WHERE month = $m", {"m": month}).fetchall()
    return rows[0][0]


@dataclass(frozen=True)
class View:
    """Everything one page of the explorer shows for a scope."""

    scope: Scope
    months: list[str]
    path_names: list[CellNames]
    cells: pd.DataFrame
    kpis: Kpis
    daily: pd.DataFrame
    hourly: pd.DataFrame
    weekdays: pd.DataFrame
    arrest_share: pd.DataFrame
    hotspot_resolution: int | None


def read_view(con: duckdb.DuckDBPyConnection, scope: Scope, months: list[str] | None = None) -> View:
    """All reads of one page, on one connection."""
    _ensure_hotspots_table(con)
    months = available_months(con) if months is None else months
    cells = map_cells(con, scope)
    return View(scope, months, path_names(con, scope), cells, kpis(con, scope, cells, months),
                daily_by_category(con, scope), by_hour(con, scope), by_weekday(con, scope),
                arrest_share(con, scope), hotspot_resolution(con, scope.last))
