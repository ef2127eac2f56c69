"""Build ``incidents_enriched`` for a window of months from ``raw_incidents`` and the stations."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from crime_assets.core import geo
from crime_assets.core.h3cells import cells_by_resolution
from crime_assets.core.months import MonthWindow
from crime_assets.core.schema import H3_RESOLUTIONS, INCIDENTS_ENRICHED, create_table_sql
from crime_assets.core.sql import sql

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


def incident_geography(ids: np.ndarray, lat: np.ndarray, lon: np.ndarray, stations: pd.DataFrame) -> pd.DataFrame:
    """Per incident: coordinate status, nearest district station and distance, H3 cells (uint64, 0 = none).

    Incidents are geocoded to block-level points (532,742 incidents of 2015-2016 sit on 209,397 distinct
    points), so the geometry is computed once per distinct point and spread back to the incidents.
    """
    status = geo.coordinate_status(lat, lon)
    usable = status == geo.OK
    # A point as one complex number (lat + i lon): np.unique on complex is ~5x faster than on rows.
    points, point_of = np.unique(np.where(usable, lat, np.nan) + 1j * np.where(usable, lon, np.nan), return_inverse=True)
    p_lat, p_lon = points.real, points.imag
    districts = stations[stations["is_district_station"]].reset_index(drop=True)
    p_index, p_distance = geo.nearest_station(p_lat, p_lon, districts["latitude"].to_numpy(), districts["longitude"].to_numpy())
    index, distance = p_index[point_of], p_distance[point_of]
    has = index >= 0
    frame = pd.DataFrame({
        "id": ids,
        "geo_status": status,
        "nearest_station_district": pd.array(np.where(has, districts["district"].to_numpy(dtype="int64", na_value=-1)[index], 0), dtype="Int32"),
        "nearest_station_name": np.where(has, districts["district_name"].to_numpy(dtype=object)[index], None),
        "station_distance_m": distance,
    })
    frame.loc[~has, "nearest_station_district"] = pd.NA
    for r, cells in cells_by_resolution(p_lat, p_lon, H3_RESOLUTIONS).items():
        frame[f"h3_r{r}"] = cells[point_of]
    return frame


def enrich_incidents(
    con: duckdb.DuckDBPyConnection, stations: pd.DataFrame, window: MonthWindow, chunk_months: int = 24
) -> EnrichStats:
    """Replace the window's months of incidents_enriched in one transaction, ``chunk_months`` at a time."""
    bounds = {"first": window.keys[0], "last": window.keys[-1]}
    con.execute(create_table_sql(ENRICHED_TABLE, INCIDENTS_ENRICHED))
    columns = ", ".join(c.name for c in INCIDENTS_ENRICHED)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {ENRICHED_TABLE} WHERE month BETWEEN $first AND $last", bounds)
        for part in window.chunks(chunk_months):
            part_bounds = {"first": part.keys[0], "last": part.keys[-1]}
            points = con.execute(
                "SELECT id, latitude, longitude FROM raw_incidents WHERE month BETWEEN $first AND $last", part_bounds
            ).fetchnumpy()
            # NULL coordinates come back masked: make them NaN.
            lat, lon = (np.ma.filled(np.ma.asarray(points[c], dtype=float), np.nan) for c in ("latitude", "longitude"))
            con.register("incident_geography", incident_geography(np.asarray(points["id"]), lat, lon, stations))
            con.execute(f"INSERT INTO {ENRICHED_TABLE} ({columns}) SELECT {columns} FROM ({sql('enrich')})", part_bounds)
            con.unregister("incident_geography")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
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
