import dagster as dg

from crime_assets.ingestion.quality import raw_incident_gates
from crime_assets.ingestion.raw_load import QUARANTINE_TABLE, RAW_TABLE, load_raw_incidents_in_chunks
from crime_assets.common.schema import POLICE_STATIONS, RAW_INCIDENTS, create_table_sql
from crime_assets.common.sql import transaction
from crime_assets.defs.common.metadata import column_schema, markdown_table, window_of
from crime_assets.defs.common.partitions import monthly_warehouse_asset
from crime_assets.defs.common.checks import gate_results, gate_specs
from crime_assets.defs.common.warehouse_resource import WAREHOUSE_POOL, Warehouse
from crime_assets.defs.ingestion.resources import CrimeSource, QualityGates

RAW_GATES = ["required_columns_and_types", "ids_are_unique", "occurrences_inside_month", "month_not_empty",
             "volume_within_band", "quarantine_share_below_threshold"]


@dg.asset(
    group_name="ingestion",
    kinds={"duckdb", "socrata"},
    pool=WAREHOUSE_POOL,
    # Lets a ranged CLI run select it together with the monthly assets.
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"dagster/column_schema": column_schema(POLICE_STATIONS), "dagster/table_name": "warehouse.police_stations"},
)
def police_stations(context: dg.AssetExecutionContext, warehouse: Warehouse, source: CrimeSource) -> dg.MaterializeResult:
    """Chicago's police stations: the 22 district stations and headquarters, with coordinates.

    From Socrata z8bn-74gv, or the snapshot the repository ships. Used to find each incident's nearest
    station."""
    stations, origin = source.stations()
    with warehouse.connect() as con:
        con.register("stations_frame", stations)
        with transaction(con):
            con.execute("DROP TABLE IF EXISTS police_stations")
            con.execute(create_table_sql("police_stations", POLICE_STATIONS))
            con.execute("INSERT INTO police_stations SELECT * FROM stations_frame")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(stations),
        "district_stations": int(stations["is_district_station"].sum()),
        "source": origin,
        "preview": markdown_table(stations.columns, stations.itertuples(index=False)),
    })


@monthly_warehouse_asset(
    group_name="ingestion",
    kinds={"duckdb", "socrata"},
    metadata={"dagster/column_schema": column_schema(RAW_INCIDENTS), "dagster/table_name": f"warehouse.{RAW_TABLE}",
              "partition_expr": "month"},
    check_specs=gate_specs("raw_incidents", RAW_GATES),
)
def raw_incidents(
    context: dg.AssetExecutionContext, warehouse: Warehouse, source: CrimeSource, quality: QualityGates
) -> dg.MaterializeResult:
    """Reported incidents of each month in one canonical, typed schema, whichever source they came from.

    The source is the Socrata API or the portal's bulk export. Deduplicated by id, the latest update
    winning. Rows that cannot be used (no id, an unparseable date, a date outside the month) go to
    raw_incidents_quarantine with a reason. A month is replaced whole, or not at all."""
    window = window_of(context)
    incidents = source.incidents(context.log)
    # Fetching (network, file index) happens before the warehouse is locked; the parts are then
    # normalised one at a time and committed together.
    parts = [(part, incidents.collect(part)) for part in window.chunks(warehouse.chunk_months)]
    with warehouse.connect() as con:
        load = load_raw_incidents_in_chunks(con, parts, window)
        gates = raw_incident_gates(con, window, quality.thresholds())
    volume = next(g for g in gates if g.name == "volume_within_band")
    spike_only = all(v["ratio"] > quality.volume_high for v in volume.details["outside_band"].values())
    arrests = sum(m.arrests for m in load.months)
    newest = max((m.newest_updated_on for m in load.months if m.newest_updated_on), default=None)
    context.log.info("%s: %d rows, %d quarantined, from %s", window.label, load.rows, load.quarantined, load.source)
    return dg.MaterializeResult(check_results=gate_results(gates, window.label, {volume.name: spike_only}), metadata={
        "dagster/row_count": load.rows,
        "months": window.label,
        "arrest_rate": round(arrests / load.rows, 4) if load.rows else 0.0,
        "quarantined_rows": load.quarantined,
        "quarantined_by_reason": dg.MetadataValue.json(load.quarantined_by_reason),
        "quarantine_table": f"warehouse.{QUARANTINE_TABLE}",
        "newest_updated_on": newest.isoformat() if newest else "none",
        "source": load.source,
        "rows_by_month": markdown_table(
            ["month", "rows", "arrests", "quarantined", "newest updated_on"],
            [(m.month, m.rows, m.arrests, m.quarantined, m.newest_updated_on) for m in load.months],
        ),
    })
