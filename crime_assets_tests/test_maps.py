"""The maps' fills, painted from the cells' raster, against what matplotlib fills directly."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest

from crime_assets.core.maps import (
    HotspotMapRenderer, _INCIDENT_COLOURS, render_months,
)

# 61 neighbouring r8 cells around the Loop, sorted as the renderer rasterises them.
CELLS = sorted(h3.grid_disk(h3.latlng_to_cell(41.8819, -87.6278, 8), 4))


@pytest.fixture
def renderer(tmp_path):
    with HotspotMapRenderer(tmp_path, 8, 100) as renderer:
        yield renderer


def matplotlib_fills(renderer: HotspotMapRenderer, cells: list[str], colours: np.ndarray) -> np.ndarray:
    """The cells filled by matplotlib itself, in order, as the maps drew them before the raster: the pixels
    of the raster's box as 32-bit RGBA numbers, 0 where no cell is."""
    figure = renderer._incidents
    figure.canvas.get_renderer().clear()
    figure.cells.set_paths(renderer._cell_paths(cells))
    figure.cells.set_facecolors(colours)
    figure.figure.draw_artist(figure.cells)
    pixels = np.asarray(figure.canvas.buffer_rgba())[renderer._raster.box]
    return np.where(pixels[..., 3] == 255, pixels.view(np.uint32)[..., 0], 0)


def neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of each pixel's eight neighbours are in ``mask``."""
    padded = np.pad(mask, 1).astype(int)
    rows, columns = mask.shape
    return sum(padded[1 + dy:1 + dy + rows, 1 + dx:1 + dx + columns]
               for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)


def test_fills_from_the_raster_are_the_pixels_matplotlib_fills(renderer):
    renderer.add_cells(CELLS)
    colours = _INCIDENT_COLOURS[np.arange(len(CELLS)) % 10]
    everything = renderer._raster.fills(np.arange(len(CELLS)), colours)
    assert np.array_equal(everything, matplotlib_fills(renderer, CELLS, colours))
    assert (everything != 0).sum() > 60 * 100  # the hexagons are there, ~150 pixels each

    # A month without every third cell: where two hexagons meet, the one present shows. Only a pixel where three
    # meet may differ, when the present one is neither the first nor the last drawn there: specks at corners.
    kept = np.arange(len(CELLS)) % 3 != 0
    some = renderer._raster.fills(np.flatnonzero(kept), colours[kept])
    differing = some != matplotlib_fills(renderer, [cell for cell, keep in zip(CELLS, kept) if keep], colours[kept])
    assert differing.sum() <= 2 * (~kept).sum()
    assert np.isin(np.flatnonzero(differing), renderer._raster.shared).all()
    assert neighbours(differing)[differing].max() <= 1  # no gaps: at most two pixels together


def test_a_cell_new_in_a_later_month_is_filled(renderer):
    first, later = CELLS[:-1], CELLS
    month = pd.DataFrame({"h3_cell": first, "incidents": 1, "arrests": 0, "pooled_incidents": 0,
                          "pooled_arrest_rate": 0.0})
    renderer.queue("2016-04", month, pd.DataFrame(columns=["h3_cell", "rank"]))
    newcomer = pd.DataFrame({"h3_cell": later, "incidents": [1] * (len(later) - 1) + [50], "arrests": 0,
                             "pooled_incidents": 0, "pooled_arrest_rate": 0.0})
    renderer.queue("2016-05", newcomer, pd.DataFrame(columns=["h3_cell", "rank"]))
    assert renderer._raster.paths == len(later)
    figure = renderer._incidents
    x, y = figure.data_to_pixels.transform(h3.cell_to_latlng(later[-1])[::-1])
    pixels = figure.draw(renderer._raster, np.arange(len(later)), _INCIDENT_COLOURS[[0] * (len(later) - 1) + [5]],
                         [], "2016-05", "a cell more")
    assert np.allclose(pixels[round(pixels.shape[0] - y), round(x)] / 255, _INCIDENT_COLOURS[5], atol=1 / 255)


def test_maps_do_not_depend_on_the_order_of_the_rows(tmp_path):
    rng = np.random.default_rng(7)
    cells = pd.DataFrame({"month": "2016-04", "h3_cell": CELLS, "incidents": rng.integers(1, 300, len(CELLS)),
                          "arrests": 3, "pooled_incidents": 30, "pooled_arrest_rate": rng.random(len(CELLS))})
    found = pd.DataFrame({"month": "2016-04", "h3_cell": CELLS[:3], "rank": [1, 2, 3]})
    drawn = render_months(cells, found, tmp_path / "sorted", 8)["2016-04"]
    shuffled = render_months(cells.sample(frac=1, random_state=1), found, tmp_path / "shuffled", 8)["2016-04"]
    assert drawn.incidents.read_bytes() == shuffled.incidents.read_bytes()
    assert drawn.arrest_rate.read_bytes() == shuffled.arrest_rate.read_bytes()
