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
    """Per incident: coordinate status, nearest district station and distance, H3 cells (uint64, 0 = none)."""
    status = geo.coordinate_status(lat, lon)
    usable = status == geo.OK
    lat_ok, lon_ok = np.where(usable, lat, np.nan), np.where(usable, lon, np.nan)
    districts = stations[stations["is_district_station"]].reset_index(drop=True)
    index, distance = geo.nearest_station(lat_ok, lon_ok, districts["latitude"].to_numpy(), districts["longitude"].to_numpy())
    has = index >= 0
    frame = pd.DataFrame({
        "id": ids,
        "geo_status": status,
        "nearest_station_district": pd.array(np.where(has, districts["district"].to_numpy(dtype="int64", na_value=-1)[index], 0), dtype="Int32"),
        "nearest_station_name": np.where(has, districts["district_name"].to_numpy(dtype=object)[index], None),
        "station_distance_m": distance,
    })
    frame.loc[~has, "nearest_station_district"] = pd.NA
    for r, cells in cells_by_resolution(lat_ok, lon_ok, H3_RESOLUTIONS).items():
        frame[f"h3_r{r}"] = cells
    return frame


def enrich_incidents(
    con: duckdb.DuckDBPyConnection, stations: pd.DataFrame, window: MonthWindow, chunk_months: int = 12
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
