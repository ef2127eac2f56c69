"""h3_hourly_counts: incidents and arrests per month, day, hour of day, H3 cell (r6-r10) and primary type.

The gold table behind the explorer's time panels (incidents by day stacked by crime category, by hour
of day, by day of week) for any cell and any category or primary type, read without touching the
incidents. Written by the ``h3_daily_counts`` asset, which reads the same rows. Only combinations with
incidents have a row; every coarser cell is the parent of the r10 cell, so at each resolution the rows
of a month sum to its geolocated incidents, as in the other H3 tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from crime_assets.hotspots.crime_categories import CATEGORY_NAMES
from crime_assets.hotspots.h3_stats import add_parent_rows, primary_types_frame, replace_window, rows_by_resolution
from crime_assets.common.h3cells import register_macros
from crime_assets.common.months import MonthWindow
from crime_assets.common.schema import Column
from crime_assets.common.sql import sql

HOURLY_COUNTS_TABLE = "h3_hourly_counts"

H3_HOURLY_COUNTS = (
    Column("month", "VARCHAR", "Partition key (YYYY-MM) of the incidents counted"),
    Column("day", "DATE", "Local calendar day of occurred_at"),
    Column("hour", "TINYINT", "Local hour of day of occurred_at (0-23)"),
    Column("resolution", "INTEGER", "H3 resolution of the cell (6-10)"),
    Column("h3_cell", "VARCHAR", "H3 cell id (hex string); every coarser cell is the parent of the incidents' r10 cell"),
    Column("primary_type", "VARCHAR", "Primary type of the incidents"),
    Column("category", "VARCHAR", "Its crime category (crime_categories.py)"),
    Column("incidents", "BIGINT", "Geolocated incidents of that type in the cell, day and hour"),
    Column("arrests", "BIGINT", "Of them, incidents with an arrest"),
)


@dataclass(frozen=True)
class HourlyCountsSummary:
    rows: int
    rows_by_resolution: dict[int, int]


def build_hourly_counts(con: duckdb.DuckDBPyConnection, window: MonthWindow) -> HourlyCountsSummary:
    """Replace the window's months of h3_hourly_counts (see the module docstring)."""
    register_macros(con)
    types = con.execute("SELECT DISTINCT primary_type FROM incidents_enriched WHERE month BETWEEN $first AND $last",
                        window.bounds).fetchall()
    frame = primary_types_frame(row[0] for row in types)
    frame["category"] = [CATEGORY_NAMES[i] for i in frame["category_id"]]
    try:
        con.register("h3_types", frame)
        con.execute(sql("h3_hourly_rows"), window.bounds)
        add_parent_rows(con, "h3_hourly_rows", ("day", "hour", "type_id"), ("incidents", "arrests"))
        replace_window(con, HOURLY_COUNTS_TABLE, H3_HOURLY_COUNTS, """
            SELECT r.month, r.day, r.hour, r.resolution, h3_hex(r.cell) AS h3_cell, t.primary_type, t.category,
                   r.incidents, r.arrests
            FROM h3_hourly_rows AS r JOIN h3_types AS t USING (type_id)""", window)
    finally:
        con.unregister("h3_types")
        con.execute("DROP TABLE IF EXISTS h3_hourly_rows")
    by_resolution = rows_by_resolution(con, HOURLY_COUNTS_TABLE, window)
    return HourlyCountsSummary(sum(by_resolution.values()), by_resolution)
