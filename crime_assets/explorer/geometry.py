"""Hexagon boundaries as GeoJSON, the map view that fits them, and rank numbers drawn as lines.

The map has no tiles (the platform works offline) and so no font glyphs: a hotspot's rank is drawn as
seven-segment digits made of line segments, which pan and zoom with the cells.
"""

from __future__ import annotations

import math
from functools import lru_cache

import h3

TILE_PX = 512  # the map's world width in pixels at zoom 0


@lru_cache(maxsize=1 << 16)
def cell_ring(cell: str) -> tuple[tuple[float, float], ...]:
    """The cell's boundary as a closed (lng, lat) ring."""
    ring = [(round(lng, 6), round(lat, 6)) for lat, lng in h3.cell_to_boundary(cell)]
    return (*ring, ring[0])


def feature_collection(cells) -> dict:
    """GeoJSON polygons of the cells, each feature's id its cell id (what a map trace's locations name)."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": cell, "geometry": {"type": "Polygon", "coordinates": [list(map(list, cell_ring(cell)))]}}
        for cell in cells]}


def fit_view(cells, width_px: int, height_px: int, margin: float = 0.9) -> tuple[dict, float]:
    """Centre (lat, lon) and zoom of a web-Mercator map of ``width_px`` x ``height_px`` holding every cell."""
    points = [p for cell in cells for p in cell_ring(cell)]
    if not points:
        return {"lat": 41.84, "lon": -87.68}, 9.0  # Chicago
    lngs, lats = [p[0] for p in points], [p[1] for p in points]
    west, east, south, north = min(lngs), max(lngs), min(lats), max(lats)

    def mercator_y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    x_span = max((east - west) / 360.0, 1e-9)
    y_span = max((mercator_y(north) - mercator_y(south)) / (2 * math.pi), 1e-9)
    zoom = math.log2(min(width_px * margin / (TILE_PX * x_span), height_px * margin / (TILE_PX * y_span)))
    centre_y = (mercator_y(north) + mercator_y(south)) / 2
    centre_lat = math.degrees(2 * math.atan(math.exp(centre_y)) - math.pi / 2)
    return {"lat": centre_lat, "lon": (west + east) / 2}, max(0.0, min(zoom, 18.0))


# Segments of a seven-segment digit in a 1 x 2 box (x right, y up): a top, b top right, c bottom right,
# d bottom, e bottom left, f top left, g middle.
_SEGMENTS = {"a": ((0, 2), (1, 2)), "b": ((1, 2), (1, 1)), "c": ((1, 1), (1, 0)), "d": ((0, 0), (1, 0)),
             "e": ((0, 0), (0, 1)), "f": ((0, 1), (0, 2)), "g": ((0, 1), (1, 1))}
_DIGITS = {"0": "abcdef", "1": "bc", "2": "abged", "3": "abgcd", "4": "fgbc", "5": "afgcd", "6": "afgedc",
           "7": "abc", "8": "abcdefg", "9": "abcdfg"}


def digit_lines(text: str, centre_lat: float, centre_lng: float, height_deg: float) -> tuple[list, list]:
    """(lngs, lats) of line segments writing ``text`` (digits) centred on a point, ``height_deg`` tall;
    segments are separated by None, as a map's line trace takes them."""
    unit = height_deg / 2  # the box is 2 units tall
    x_unit = unit / max(math.cos(math.radians(centre_lat)), 0.1)  # degrees of longitude are narrower
    advance = 1.6
    left = -(advance * len(text) - 0.6) / 2
    lngs: list = []
    lats: list = []
    for i, char in enumerate(text):
        for name in _DIGITS[char]:
            (x0, y0), (x1, y1) = _SEGMENTS[name]
            for x, y in ((x0, y0), (x1, y1)):
                lngs.append(centre_lng + (left + i * advance + x) * x_unit)
                lats.append(centre_lat + (y - 1) * unit)
            lngs.append(None)
            lats.append(None)
    return lngs, lats


def cell_height_deg(cell: str) -> float:
    """The cell's north-south extent in degrees of latitude."""
    lats = [p[1] for p in cell_ring(cell)]
    return max(lats) - min(lats)
