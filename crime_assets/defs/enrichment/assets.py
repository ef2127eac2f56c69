import dagster as dg

from crime_assets.enrichment.enrich import ENRICHED_TABLE, enrich_incidents
from crime_assets.ingestion.quality import enriched_gates
from crime_assets.common.schema import INCIDENTS_ENRICHED
from crime_assets.defs.common.metadata import column_schema, markdown_table, window_of
from crime_assets.defs.common.partitions import monthly_warehouse_asset
from crime_assets.defs.common.checks import gate_results, gate_specs
from crime_assets.defs.common.warehouse_resource import Warehouse
from crime_assets.defs.ingestion.resources import QualityGates

ENRICHED_GATES = ["geolocated_share_above_threshold", "station_distances_plausible", "geolocated_rows_have_h3_cells"]


@monthly_warehouse_asset(
    group_name="enrichment",
    kinds={"duckdb", "python"},
    deps=["raw_incidents", "police_stations"],
    metadata={"dagster/column_schema": column_schema(INCIDENTS_ENRICHED),
              "dagster/table_name": f"warehouse.{ENRICHED_TABLE}", "partition_expr": "month"},
    check_specs=gate_specs("incidents_enriched", ENRICHED_GATES),
)
def incidents_enriched(
    context: dg.AssetExecutionContext, warehouse: Warehouse, quality: QualityGates
) -> dg.MaterializeResult:
    """Each month's incidents with the nearest police station, calendar features and H3 cells.

    Coordinates are checked against Chicago's extent (missing or outside: flagged, never dropped); then the
    nearest district police station and the great-circle distance to it, calendar features (hour, weekday,
    season, time-of-day band, cyclic encodings) and H3 cells at resolutions 6-10, where every coarser cell
    is the parent of the r10 cell."""
    window = window_of(context)
    with warehouse.connect() as con:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'police_stations'").fetchall()[0][0]:
            raise RuntimeError("table police_stations is missing: materialize the police_stations asset first")
        stations = con.execute("SELECT * FROM police_stations").df()
        stats = enrich_incidents(con, stations, window, warehouse.chunk_months)
        gates = enriched_gates(con, window, quality.thresholds())
    return dg.MaterializeResult(check_results=gate_results(gates, window.label), metadata={
        "dagster/row_count": stats.rows,
        "months": window.label,
        "geolocated_share": round(stats.geolocated_share, 4),
        "rows_by_geo_status": dg.MetadataValue.json(stats.by_status),
        "median_station_distance_m": round(stats.median_station_distance_m or 0.0, 1),
        "rows_by_month": markdown_table(["month", "rows"], stats.rows_by_month.items()),
    })
