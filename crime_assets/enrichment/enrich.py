"""Build ``incidents_enriched`` for a window of months from ``raw_incidents`` and the stations."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from crime_assets.common import geo
from crime_assets.common.h3cells import finest_cells, register_macros
from crime_assets.common.months import MonthWindow
from crime_assets.common.schema import INCIDENTS_ENRICHED, create_table_sql
from crime_assets.common.sql import sql, transaction

ENRICHED_TABLE = "incidents_enriched"


@dataclass(frozen=True)
class EnrichStats:
    rows: int
    geolocated: int
    by_status: dict[str, int]
    median_station_distance_m: float | None
    rows_by_month: dict[str, int]

    @property
    def geolocated_share(self) -> float:
        return self.geolocated / self.rows if self.rows else 0.0


def point_geography(lat: np.ndarray, lon: np.ndarray, districts: pd.DataFrame) -> pd.DataFrame:
    """Per point: coordinate status, index of the nearest district station in ``districts`` (-1: none) and
    the distance to it, and the r10 H3 cell (uint64, 0 = none). Only 'ok' points get a station and a cell.

    Incidents are geocoded to block-level points (532,742 incidents of 2015-2016 sit on 209,397 distinct
    points), so enrichment computes this once per distinct point and joins it back to the incidents.
    """
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    status = geo.coordinate_status(lat, lon)
    usable = status == geo.OK
    u_lat, u_lon = np.where(usable, lat, np.nan), np.where(usable, lon, np.nan)
    station, distance = geo.nearest_station(u_lat, u_lon, districts["latitude"].to_numpy(float),
                                            districts["longitude"].to_numpy(float))
    return pd.DataFrame({
        "latitude": lat, "longitude": lon,
        "geo_status": pd.Categorical(status, categories=[geo.OK, geo.MISSING, geo.OUTSIDE]),
        "station": station.astype(np.int32), "station_distance_m": distance,
        "h3_r10": finest_cells(u_lat, u_lon),
    })


def enrich_incidents(
    con: duckdb.DuckDBPyConnection, stations: pd.DataFrame, window: MonthWindow, chunk_months: int = 24
) -> EnrichStats:
    """Replace the window's months of incidents_enriched in one transaction, ``chunk_months`` at a time."""
    bounds = window.bounds
    con.execute(create_table_sql(ENRICHED_TABLE, INCIDENTS_ENRICHED))
    columns = ", ".join(c.name for c in INCIDENTS_ENRICHED)
    districts = stations[stations["is_district_station"]].reset_index(drop=True)
    register_macros(con)
    con.register("district_stations", pd.DataFrame({
        "station": np.arange(len(districts), dtype=np.int32),
        "district": pd.array(districts["district"], dtype="Int32"),
        "name": districts["district_name"].astype(object)}))
    try:
        with transaction(con):
            con.execute(f"DELETE FROM {ENRICHED_TABLE} WHERE month BETWEEN $first AND $last", bounds)
            for part in window.chunks(chunk_months):
                part_bounds = part.bounds
                points = con.execute(
                    "SELECT DISTINCT latitude, longitude FROM raw_incidents WHERE month BETWEEN $first AND $last"
                    " AND latitude IS NOT NULL AND longitude IS NOT NULL", part_bounds).fetchnumpy()
                con.register("point_geography", point_geography(points["latitude"], points["longitude"], districts))
                con.execute(f"INSERT INTO {ENRICHED_TABLE} ({columns}) SELECT {columns} FROM ({sql('incidents_enriched')})",
                            part_bounds)
                con.unregister("point_geography")
    finally:
        con.unregister("district_stations")
    return _stats(con, bounds)


def _stats(con: duckdb.DuckDBPyConnection, bounds: dict) -> EnrichStats:
    by_status = dict(con.execute(
        f"SELECT geo_status, count(*) FROM {ENRICHED_TABLE} WHERE month BETWEEN $first AND $last GROUP BY ALL",
        bounds).fetchall())
    by_month = dict(con.execute(
        f"SELECT month, count(*) FROM {ENRICHED_TABLE} WHERE month BETWEEN $first AND $last GROUP BY ALL ORDER BY 1",
        bounds).fetchall())
    median = con.execute(
        f"SELECT median(station_distance_m) FROM {ENRICHED_TABLE} WHERE month BETWEEN $first AND $last", bounds
    ).fetchall()[0][0]
    rows = sum(by_status.values())
    return EnrichStats(rows, by_status.get(geo.OK, 0), by_status, median, by_month)
