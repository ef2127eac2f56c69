"""H3 cells at resolutions 6-10 with one parent rule.

Only the finest cell (r10) is computed from the coordinates; every coarser cell is the
H3 parent of that r10 cell. H3 is not exactly nested (the directly computed r9 cell
differs from the r10 cell's parent for ~7% of points), so this rule is what makes counts
sum exactly when drilling from r6 down to r10.
"""

from __future__ import annotations

import duckdb
import h3.api.basic_int as h3int
import numpy as np

from crime_assets.common.sql import sql

FINEST = 10
_RES_SHIFT = np.uint64(52)
_RES_MASK = np.uint64(0xF) << _RES_SHIFT


def finest_cells(lat: np.ndarray, lon: np.ndarray, resolution: int = FINEST) -> np.ndarray:
    """H3 cells (uint64) of points; 0 where a coordinate is missing."""
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    out = np.zeros(len(lat), dtype=np.uint64)
    valid = ~(np.isnan(lat) | np.isnan(lon))
    count = int(valid.sum())
    out[valid] = np.fromiter(map(h3int.latlng_to_cell, lat[valid].tolist(), lon[valid].tolist(), [resolution] * count),
                             dtype=np.uint64, count=count)
    return out


def parent_cells(cells: np.ndarray, resolution: int) -> np.ndarray:
    """The parent at ``resolution`` of each cell, by bit operations (same answer as h3.cell_to_parent).

    An H3 index keeps its resolution in bits 52-55 and one 3-bit digit per finer resolution;
    digits below the cell's resolution are all ones (7). 0 stays 0.
    """
    cells = np.asarray(cells, dtype=np.uint64)
    unused_digits = np.uint64((1 << (3 * (15 - resolution))) - 1)
    parents = (cells & ~_RES_MASK) | (np.uint64(resolution) << _RES_SHIFT) | unused_digits
    return np.where(cells == 0, np.uint64(0), parents)


def cells_by_resolution(lat: np.ndarray, lon: np.ndarray, resolutions=(6, 7, 8, 9, 10)) -> dict[int, np.ndarray]:
    finest = finest_cells(lat, lon, max(resolutions))
    return {r: finest if r == max(resolutions) else parent_cells(finest, r) for r in resolutions}


def to_hex(cells: np.ndarray) -> list[str | None]:
    return [format(c, "x") if c else None for c in np.asarray(cells, dtype=np.uint64).tolist()]


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    """The same rule in SQL (h3_macros.sql): h3_bits / h3_hex convert ids, h3_parent_bits takes parents;
    also the Wilson interval macros of the H3 statistics."""
    con.execute(sql("h3_macros"))
