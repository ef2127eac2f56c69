"""Coordinates: Chicago's extent and the nearest police station by great-circle distance."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)

# The city limits' bounding box (41.644..42.023 N, 87.940..87.524 W) padded by ~1 km: records
# geocoded to 0/0, to Missouri, or left at the State Plane origin fall outside it.
CHICAGO_EXTENT = {"lat_min": 41.63, "lat_max": 42.04, "lon_min": -87.95, "lon_max": -87.51}

OK, MISSING, OUTSIDE = "ok", "missing", "outside_chicago"


def coordinate_status(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """'ok', 'missing' (no coordinates) or 'outside_chicago' for each point."""
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    missing = np.isnan(lat) | np.isnan(lon)
    with np.errstate(invalid="ignore"):
        inside = (
            (lat >= CHICAGO_EXTENT["lat_min"]) & (lat <= CHICAGO_EXTENT["lat_max"])
            & (lon >= CHICAGO_EXTENT["lon_min"]) & (lon <= CHICAGO_EXTENT["lon_max"])
        )
    return np.where(missing, MISSING, np.where(inside, OK, OUTSIDE))


def haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres (arrays broadcast)."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def nearest_station(
    lat: np.ndarray, lon: np.ndarray, station_lat: np.ndarray, station_lon: np.ndarray, chunk: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest station and the great-circle distance to it in metres, for each point.

    The great-circle distance grows with the straight-line distance through the sphere, so the nearest
    station is the one whose unit vector has the largest dot product with the point's: one small matrix
    product instead of a haversine per (point, station) pair; the haversine is then taken only to the
    station found. Points without coordinates get index -1 and distance NaN. Chunked so memory stays at
    chunk x stations whatever the number of points.
    """
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    index = np.full(lat.shape, -1, dtype=np.int64)
    distance = np.full(lat.shape, np.nan)
    valid = np.flatnonzero(~(np.isnan(lat) | np.isnan(lon)))
    s_lat, s_lon = np.asarray(station_lat, dtype=float), np.asarray(station_lon, dtype=float)
    stations = _unit_vectors(s_lat, s_lon)
    for begin in range(0, valid.size, chunk):
        rows = valid[begin:begin + chunk]
        best = (_unit_vectors(lat[rows], lon[rows]) @ stations.T).argmax(axis=1)
        index[rows] = best
        distance[rows] = haversine_m(lat[rows], lon[rows], s_lat[best], s_lon[best])
    return index, distance
