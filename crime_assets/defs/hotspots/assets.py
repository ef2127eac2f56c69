from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from crime_assets.hotspots.h3_stats import (
    CELL_LABELS_TABLE, DAILY_COUNTS_TABLE, H3_CELL_LABELS, H3_DAILY_COUNTS, H3_MONTHLY_STATS, MONTHLY_STATS_TABLE,
    ConfidenceRule, build_cell_labels, build_daily_counts, build_monthly_stats, count_conservation_violations,
    label_coverage_violations, parent_sum_violations, rate_bound_violations,
)
from crime_assets.hotspots.h3_hourly import HOURLY_COUNTS_TABLE, build_hourly_counts
from crime_assets.hotspots.hotspots import (
    HOTSPOTS, HOTSPOTS_TABLE, MAX_HISTORY_MONTHS, HotspotTest, find_hotspots, hotspot_resolution,
    hotspots_missing_from_stats, map_inputs,
)
from crime_assets.hotspots.maps import render_months, thumbnail_markdown
from crime_assets.defs.common.metadata import column_schema, markdown_table, window_of
from crime_assets.defs.common.partitions import month_and_history, monthly_asset, monthly_warehouse_asset
from crime_assets.defs.common.warehouse_resource import Warehouse

GROUP = "hotspots"
KINDS = {"duckdb", "h3"}


def _gold_table(table: str, columns, checks: dict[str, str], blocking: bool, deps=("incidents_enriched",)):
    """``monthly_warehouse_asset`` for the asset named after ``table``: group, kinds, schema, and its checks."""
    return monthly_warehouse_asset(
        group_name=GROUP, kinds=KINDS, deps=list(deps),
        metadata={"dagster/column_schema": column_schema(columns), "dagster/table_name": f"warehouse.{table}",
                  "partition_expr": "month"},
        check_specs=[dg.AssetCheckSpec(name, asset=table, blocking=blocking, description=text)
                     for name, text in checks.items()])


CONSERVATION_HEADER = ["month", "resolution", "cell incidents", "geolocated", "cell arrests", "arrests"]


def _check(name: str, window, count: int, found: str, rows: list[tuple], header: list[str]) -> dg.AssetCheckResult:
    """Passed when ``count`` is 0; the metadata names the run's months and shows the first offending rows."""
    metadata = {"months": window.label}
    if rows:
        metadata["first_violations"] = markdown_table(header, rows[:20])
    return dg.AssetCheckResult(check_name=name, passed=count == 0, description=f"{window.label}: {count} {found}",
                               metadata=metadata)


def _per_resolution(counts: dict[int, object]) -> dg.JsonMetadataValue:
    return dg.MetadataValue.json({f"r{r}": n for r, n in counts.items()})


class H3MonthlyStatsConfig(dg.Config, ConfidenceRule):
    """When a cell's arrest rate is flagged as low-confidence (is_low_confidence)."""


@_gold_table(MONTHLY_STATS_TABLE, H3_MONTHLY_STATS, blocking=True, checks={
    "cells_sum_to_geolocated_incidents": "At every resolution 6-10 the cells' incidents and arrests sum to the "
                                         "month's geolocated incidents and arrests in incidents_enriched.",
    "children_sum_to_parent": "Each cell's children (one resolution finer) sum to its incidents and arrests, "
                              "and every parent_cell is the H3 parent.",
    "rates_within_bounds": "Every rate, share and Wilson bound is in [0, 1], with lower <= rate <= upper.",
})
def h3_monthly_stats(context: dg.AssetExecutionContext, config: H3MonthlyStatsConfig,
                     warehouse: Warehouse) -> dg.MaterializeResult:
    """Incidents, arrests and arrest rates per month, H3 resolution (6-10) and cell with incidents.

    The arrest rate with its Wilson 95% score interval, a neighbour-pooled arrest rate (sum of arrests over
    the cell and its ring-1 neighbours divided by the sum of their incidents), a low-confidence flag
    (thresholds in run config), the dominant primary type and its share, the domestic share and the
    incidents of each crime category (violent, property, drugs, weapons, public_order, other). Coarser cells
    are parents of the r10 cell, so counts add up exactly from r10 to r6; formulas in
    crime_assets/hotspots/h3_stats.py."""
    window = window_of(context)
    rule = config
    with warehouse.connect() as con:
        summary = build_monthly_stats(con, window, rule)
        conservation = count_conservation_violations(con, window)
        parent_count, parent_rows = parent_sum_violations(con, window)
        bound_count, bound_rows = rate_bound_violations(con, window)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary.rows,
            "months": window.label,
            "geolocated_incidents": summary.incidents,
            "arrest_rate": round(summary.arrest_rate, 4),
            "cells_by_resolution": _per_resolution(summary.cells_by_resolution),
            "low_confidence_share_by_resolution": _per_resolution(summary.low_confidence_share_by_resolution),
            "low_confidence_rule": f"incidents < {rule.min_incidents} or interval wider than {rule.max_interval_width}",
            "by_month": markdown_table(["month", "geolocated incidents", "arrests", "r8 cells"], summary.by_month),
        },
        check_results=[
            _check("cells_sum_to_geolocated_incidents", window, len(conservation),
                   "(month, resolution) totals differ from incidents_enriched", conservation, CONSERVATION_HEADER),
            _check("children_sum_to_parent", window, parent_count,
                   "cells whose children do not add up or whose parent is wrong",
                   parent_rows, ["month", "resolution", "cell", "problem"]),
            _check("rates_within_bounds", window, bound_count,
                   "rows with a rate or bound outside [0, 1] or out of order",
                   bound_rows, ["month", "resolution", "cell", "rate", "lower", "upper", "pooled"]),
        ],
    )


@_gold_table(DAILY_COUNTS_TABLE, H3_DAILY_COUNTS, blocking=False, checks={
    "daily_cells_sum_to_geolocated_incidents": "At every resolution the month's daily cell counts sum to its "
                                               "geolocated incidents and arrests in incidents_enriched.",
    "hourly_cells_sum_to_geolocated_incidents": "The same for h3_hourly_counts, written by this asset too.",
})
def h3_daily_counts(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Incidents and arrests per H3 cell (resolutions 6-10) per day.

    For each month's geolocated incidents (day = local calendar day of occurred_at; only cell-days with
    incidents have a row). For time series and day-of-week patterns of a place without scanning the
    incidents. Also writes h3_hourly_counts: the same per hour of day and primary type, for the hotspot
    explorer's time panels (crime_assets/hotspots/h3_hourly.py)."""
    window = window_of(context)
    with warehouse.connect() as con:
        summary = build_daily_counts(con, window)
        conservation = count_conservation_violations(con, window, table=DAILY_COUNTS_TABLE)
        hourly = build_hourly_counts(con, window)
        hourly_conservation = count_conservation_violations(con, window, table=HOURLY_COUNTS_TABLE)
    busiest = f"{summary.busiest_day[0]} ({summary.busiest_day[1]} incidents)" if summary.busiest_day else "none"
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary.rows,
            "months": window.label,
            "days": summary.days,
            "rows_by_resolution": _per_resolution(summary.rows_by_resolution),
            "busiest_day": busiest,
            "hourly_rows": hourly.rows,
        },
        check_results=[
            _check("daily_cells_sum_to_geolocated_incidents", window, len(conservation),
                   "(month, resolution) totals differ from incidents_enriched", conservation, CONSERVATION_HEADER),
            _check("hourly_cells_sum_to_geolocated_incidents", window, len(hourly_conservation),
                   f"(month, resolution) totals of {HOURLY_COUNTS_TABLE} differ from incidents_enriched",
                   hourly_conservation, CONSERVATION_HEADER),
        ],
    )


@_gold_table(CELL_LABELS_TABLE, H3_CELL_LABELS, blocking=True, checks={
    "one_label_per_cell": "Exactly one label row per cell with geolocated incidents, at every resolution "
                          "(a duplicate would duplicate hotspot rows).",
})
def h3_cell_labels(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """The names a person recognises for each H3 cell (resolutions 6-10) in each month.

    The most frequent block, police district, beat, ward and community area of its incidents, and a label
    such as '001XX N STATE ST, Loop, district 1', so a cell reads as a place instead of an H3 id."""
    window = window_of(context)
    with warehouse.connect() as con:
        summary = build_cell_labels(con, window)
        coverage = label_coverage_violations(con, window)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary.rows,
            "months": window.label,
            "fully_labelled_share": summary.labelled_share,
            "busiest_r8_cells": markdown_table(["month", "cell", "incidents", "label"], summary.examples),
        },
        check_results=[
            _check("one_label_per_cell", window, len(coverage), "(month, resolution) without exactly one label per cell",
                   coverage, ["month", "resolution", "problem"]),
        ],
    )


class HotspotsConfig(dg.Config, HotspotTest):
    """The hotspot test (crime_assets/hotspots/hotspots.py)."""


# Month M's test reads h3_monthly_stats of M and of at most the 12 months before it.
HOTSPOT_HISTORY = month_and_history(MAX_HISTORY_MONTHS)


@_gold_table(HOTSPOTS_TABLE, HOTSPOTS, blocking=False,
             deps=[dg.AssetDep(h3_monthly_stats, partition_mapping=HOTSPOT_HISTORY), h3_cell_labels], checks={
    "hotspot_cells_exist_in_stats": "Every hotspot cell has a row in h3_monthly_stats for the same month and "
                                    "resolution.",
})
def hotspots(context: dg.AssetExecutionContext, config: HotspotsConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """Cells whose incidents this month are anomalously high against their own trailing 12 months.

    A Poisson upper-tail test against the same cell's trailing 12 months in h3_monthly_stats, with a minimum
    count and a Bonferroni correction, ranked by p-value and labelled from h3_cell_labels, at a configurable
    resolution (default 8). A month with fewer than min_history_months (default 3) earlier months of
    statistics gets no rows. The maps of each month are the asset hotspot_maps."""
    window = window_of(context)
    test = config
    with warehouse.connect() as con:
        run = find_hotspots(con, window, test)
        missing = hotspots_missing_from_stats(con, window)
    last_tested = next((m for m in reversed(run.months) if not m.skipped), None)
    metadata = {
        "dagster/row_count": run.rows,
        "months": window.label,
        "resolution": test.resolution,
        "test": dg.MetadataValue.json(test.values()),
        "by_month": markdown_table(
            ["month", "history months", "cells", "tested", "hotspots", "top hotspot", "skipped because"],
            [(m.month, m.history_months, m.cells, m.tested, m.hotspots, m.top[0][2] if m.top else "", m.skipped or "")
             for m in run.months]),
    }
    if run.skipped:
        metadata["months_not_tested"] = ", ".join(run.skipped)
    if last_tested is not None:
        metadata[f"top_hotspots_{last_tested.month}"] = markdown_table(
            ["rank", "cell", "label", "incidents", "baseline", "p-value"],
            [(rank, cell, label, n, round(base, 1), f"{p:.1e}") for rank, cell, label, n, base, p in last_tested.top])
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            _check("hotspot_cells_exist_in_stats", window, len(missing),
                   "hotspot cells without a row in h3_monthly_stats", missing, ["month", "resolution", "cell"]),
        ],
    )


class HotspotMapsConfig(dg.Config):
    """What the maps draw (crime_assets/hotspots/maps.py)."""

    resolution: Optional[int] = Field(
        default=None, description="H3 resolution of the maps (6-10); default: the one the months' hotspots were "
                                  "tested at, 8 when none were found")
    max_outlined: int = Field(default=10, description="Hotspots outlined and numbered on the maps")
    render_maps: bool = Field(default=True, description="Draw the two PNG maps of each month")


@monthly_asset(
    group_name=GROUP,
    kinds={"h3", "matplotlib"},
    deps=[hotspots, h3_monthly_stats],
)
def hotspot_maps(context: dg.AssetExecutionContext, config: HotspotMapsConfig,
                 warehouse: Warehouse) -> dg.MaterializeResult:
    """Two PNG maps of each month under reports/hotspots in the data directory: incidents per cell, and the
    neighbour-pooled arrest rate, with the month's top hotspots outlined and numbered.

    Drawn from the hexagon boundaries of h3_monthly_stats' cells with matplotlib (no map tiles). Reads the
    warehouse briefly and draws after closing it, outside the warehouse pool, so writers do not wait on the
    drawing. The newest month's maps show as previews in the metadata."""
    window = window_of(context)
    with warehouse.connect() as con:
        resolution = config.resolution or hotspot_resolution(con, window) or HotspotsConfig().resolution
        cells, found = map_inputs(con, window, resolution)
    folder = Path(warehouse.data_dir) / "reports" / "hotspots"
    maps = render_months(cells, found, folder, resolution, config.max_outlined) if config.render_maps else {}
    metadata = {"months": window.label, "resolution": resolution, "maps": len(maps) * 2,
                "folder": dg.MetadataValue.path(str(folder))}
    if maps:
        month, month_maps = max(maps.items())
        metadata["incidents_map"] = dg.MetadataValue.path(str(month_maps.incidents))
        metadata["arrest_rate_map"] = dg.MetadataValue.path(str(month_maps.arrest_rate))
        metadata["maps_preview"] = dg.MetadataValue.md(
            f"**{month}** (full size: incidents_map, arrest_rate_map; every month of the run in "
            f"{month_maps.incidents.parent})\n\n" + thumbnail_markdown([month_maps.incidents, month_maps.arrest_rate]))
    return dg.MaterializeResult(metadata=metadata)


def with_explorer_link(assets: list, url: str) -> list:
    """``assets`` with a link to the hotspot explorer (CRIME_EXPLORER_URL) in the hotspots asset's metadata."""
    link = {"hotspot_explorer": dg.MetadataValue.url(url)}
    return dg.map_asset_specs(
        lambda spec: spec.merge_attributes(metadata=link) if spec.key == hotspots.key else spec, assets)
