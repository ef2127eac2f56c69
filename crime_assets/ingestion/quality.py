"""Quality gates of the ingestion and enrichment tables: plain functions over the warehouse.

Each gate looks at a window of months and answers with a ``Gate``: passed or not, what it found,
and the months at fault. The Dagster assets turn these into asset check results.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import duckdb

from crime_assets.common.months import MonthWindow, months_before, shift_month
from crime_assets.common.schema import RAW_INCIDENTS


@dataclass(frozen=True)
class Thresholds:
    volume_band: tuple[float, float] = (0.5, 1.5)     # a month's rows vs the trailing 12-month median
    volume_min_history: int = 3                        # fewer earlier months: the band is not judged
    max_quarantine_share: float = 0.05                 # quarantined / (loaded + quarantined), per month
    min_geolocated_share: float = 0.90                 # real months: 95.0%-99.6% in 2015-2016
    max_station_distance_m: float = 20_000.0           # the farthest real incident is 13.8 km from its station


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    summary: str
    details: dict = field(default_factory=dict)


def _per_month(con, sql: str, window: MonthWindow) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in con.execute(sql, window.bounds).fetchall()}


def raw_incident_gates(con: duckdb.DuckDBPyConnection, window: MonthWindow, t: Thresholds) -> list[Gate]:
    return [
        columns_and_types(con, "raw_incidents", RAW_INCIDENTS),
        ids_are_unique(con, window),
        occurrences_inside_month(con, window),
        month_not_empty(con, window),
        volume_within_band(con, window, t),
        quarantine_share_below_threshold(con, window, t),
    ]


def columns_and_types(con, table: str, expected) -> Gate:
    found = dict(con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = $t", {"t": table}).fetchall())
    wrong = {c.name: {"expected": c.type, "found": found.get(c.name)} for c in expected if found.get(c.name) != c.type}
    return Gate("required_columns_and_types", not wrong,
                "all columns present with their types" if not wrong else f"{len(wrong)} column(s) missing or mistyped",
                {"wrong": wrong})


def ids_are_unique(con, window: MonthWindow) -> Gate:
    within = con.execute(
        "SELECT count(*) - count(DISTINCT id) FROM raw_incidents WHERE month BETWEEN $first AND $last",
        window.bounds).fetchall()[0][0]
    # A record re-dated into another month would otherwise live on in its old month too.
    across = con.execute(
        """SELECT count(*) FROM raw_incidents AS r
           WHERE r.month BETWEEN $first AND $last
             AND r.id IN (SELECT id FROM raw_incidents WHERE month NOT BETWEEN $first AND $last)""",
        window.bounds).fetchall()[0][0]
    return Gate("ids_are_unique", within == 0 and across == 0,
                f"{within} duplicate ids within the months, {across} also stored under another month",
                {"duplicates_within": within, "duplicates_in_other_months": across})


def occurrences_inside_month(con, window: MonthWindow) -> Gate:
    bad = _per_month(con, """
        SELECT month, count(*) FROM raw_incidents
        WHERE month BETWEEN $first AND $last AND (occurred_at IS NULL OR strftime(occurred_at, '%Y-%m') <> month)
        GROUP BY month""", window)
    return Gate("occurrences_inside_month", not bad,
                "every occurrence time lies in its partition's month" if not bad else f"rows outside their month in {sorted(bad)}",
                {"rows_outside": {m: v[0] for m, v in bad.items()}})


def _month_counts(con, window: MonthWindow, history_months: int = 0) -> dict[str, int]:
    return dict(con.execute(
        "SELECT month, count(*) FROM raw_incidents WHERE month BETWEEN $first AND $last GROUP BY month",
        {"first": shift_month(window.keys[0], -history_months), "last": window.keys[-1]}).fetchall())


def month_not_empty(con, window: MonthWindow) -> Gate:
    counts = _month_counts(con, window)
    empty = [m for m in window.keys if not counts.get(m)]
    return Gate("month_not_empty", not empty,
                "every month has incidents" if not empty else f"no incidents in {empty}",
                {"empty_months": empty, "rows_by_month": {m: counts.get(m, 0) for m in window.keys}})


def volume_within_band(con, window: MonthWindow, t: Thresholds) -> Gate:
    counts = _month_counts(con, window, history_months=12)
    low, high = t.volume_band
    judged, outside = {}, {}
    for key in window.keys:
        trailing = [counts[m] for m in months_before(key, 12) if m in counts]
        if len(trailing) < t.volume_min_history:
            continue
        median = statistics.median(trailing)
        ratio = counts.get(key, 0) / median
        judged[key] = round(ratio, 3)
        if not low <= ratio <= high:
            outside[key] = {"rows": counts.get(key, 0), "trailing_median": median, "ratio": round(ratio, 3)}
    summary = (f"{len(judged)} month(s) judged, all within {low:g}-{high:g}x the trailing 12-month median"
               if not outside else f"volume anomaly in {sorted(outside)}")
    return Gate("volume_within_band", not outside, summary,
                {"ratio_to_trailing_median": judged, "outside_band": outside, "band": [low, high]})


def quarantine_share_below_threshold(con, window: MonthWindow, t: Thresholds) -> Gate:
    counts = _month_counts(con, window)
    quarantined = dict(con.execute(
        "SELECT month, count(*) FROM raw_incidents_quarantine WHERE month BETWEEN $first AND $last GROUP BY month",
        window.bounds).fetchall())
    shares = {m: round(quarantined.get(m, 0) / max(quarantined.get(m, 0) + counts.get(m, 0), 1), 4) for m in window.keys}
    over = {m: s for m, s in shares.items() if s > t.max_quarantine_share}
    return Gate("quarantine_share_below_threshold", not over,
                f"quarantine share at most {t.max_quarantine_share:.0%} in every month" if not over
                else f"quarantine share above {t.max_quarantine_share:.0%} in {sorted(over)}",
                {"share_by_month": shares, "over_threshold": over})


def enriched_gates(con: duckdb.DuckDBPyConnection, window: MonthWindow, t: Thresholds) -> list[Gate]:
    stats = _per_month(con, """
        SELECT month, count(*), count(*) FILTER (is_geolocated),
               count(*) FILTER (is_geolocated AND (station_distance_m IS NULL OR station_distance_m > $max_d
                                                   OR station_distance_m < 0)),
               count(*) FILTER (is_geolocated AND (h3_r6 IS NULL OR h3_r7 IS NULL OR h3_r8 IS NULL
                                                   OR h3_r9 IS NULL OR h3_r10 IS NULL)),
               max(station_distance_m)
        FROM incidents_enriched WHERE month BETWEEN $first AND $last GROUP BY month""".replace(
        "$max_d", repr(float(t.max_station_distance_m))), window)
    shares = {m: round(v[1] / v[0], 4) for m, v in stats.items() if v[0]}
    low_share = {m: s for m, s in shares.items() if s < t.min_geolocated_share}
    far = {m: v[2] for m, v in stats.items() if v[2]}
    no_cells = {m: v[3] for m, v in stats.items() if v[3]}
    return [
        Gate("geolocated_share_above_threshold", not low_share and bool(stats),
             f"geolocated share at least {t.min_geolocated_share:.0%} in every month" if not low_share
             else f"geolocated share below {t.min_geolocated_share:.0%} in {sorted(low_share)}",
             {"share_by_month": shares, "below_threshold": low_share}),
        Gate("station_distances_plausible", not far,
             f"every geolocated incident within {t.max_station_distance_m / 1000:g} km of its station" if not far
             else f"implausible station distances in {sorted(far)}",
             {"implausible_rows": far, "max_distance_m": {m: round(v[4] or 0, 1) for m, v in stats.items()}}),
        Gate("geolocated_rows_have_h3_cells", not no_cells,
             "every geolocated row has its cells at r6-r10" if not no_cells else f"rows without H3 cells in {sorted(no_cells)}",
             {"rows_without_cells": no_cells}),
    ]
