"""Maps of a month's H3 cells drawn from their hexagon boundaries with matplotlib (Agg, no tiles).

Two pictures per month: incidents per cell on a 1-2-5 class scale, and the neighbour-pooled arrest rate
(greyed where fewer than ``MIN_POOLED_INCIDENTS`` incidents back it). The month's top hotspots are
outlined and numbered by rank. Every month of a run shares the frame (Chicago's extent, longitude
stretched by 1/cos(latitude) so hexagons keep their shape) and the colour classes, so months compare
at a glance.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import h3
import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PolyCollection
from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from crime_assets.core.geo import CHICAGO_EXTENT

MIN_POOLED_INCIDENTS = 20
_NO_DATA = "#d9d9d9"
_OUTLINE = "#08306b"
_INCIDENT_BREAKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000]
# One colour per class, fixed: the scale darkens over the first ten classes (1-1000, what cells of r7-r10
# reach in a month) and stays darkest above.
_INCIDENT_COLOURS = matplotlib.colormaps["YlOrRd"](np.r_[np.linspace(0.05, 1.0, 10), np.ones(5)])
_RATE_BREAKS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0]
_RATE_COLOURS = matplotlib.colormaps["viridis_r"](np.linspace(0.0, 0.95, len(_RATE_BREAKS) - 1))


@dataclass(frozen=True)
class MonthMaps:
    incidents: Path
    arrest_rate: Path


def hexagons(cells: list[str], cache: dict[str, np.ndarray] | None = None) -> np.ndarray | list[np.ndarray]:
    """Each cell's boundary as (lon, lat) vertices: one (cells, 6, 2) array when all are hexagons (matplotlib
    builds those paths much faster), a list of arrays when a pentagon is among them. ``cache`` keeps
    boundaries between calls (a backfill draws the same cells month after month)."""
    cache = {} if cache is None else cache
    polygons = []
    for cell in cells:
        if cell not in cache:
            cache[cell] = np.asarray(h3.cell_to_boundary(cell))[:, ::-1]
        polygons.append(cache[cell])
    return np.stack(polygons) if polygons and all(len(p) == 6 for p in polygons) else polygons


def incident_breaks(max_count: int) -> list[int]:
    """The 1-2-5 class limits from 1 up to the first limit above ``max_count`` (at least 1-2-5-10)."""
    upper = next((i for i, b in enumerate(_INCIDENT_BREAKS) if b > max_count), len(_INCIDENT_BREAKS) - 1)
    return _INCIDENT_BREAKS[:max(upper, 3) + 1]


def _classes(values: np.ndarray, breaks: list[float]) -> np.ndarray:
    return np.clip(np.searchsorted(breaks, values, side="right") - 1, 0, len(breaks) - 2)


class _MapFigure:
    """One figure drawn once with its fixed parts (frame, colour bar, legend), then per month only the
    hexagons, outlines and titles are drawn over a copy of that background: several times faster than
    drawing a new figure for each of a backfill's maps."""

    def __init__(self, title: str, breaks: list[float], colours: np.ndarray, legend_label: str, tick_format: str,
                 extra_legend: list[Patch] | None = None):
        self.figure = Figure(figsize=(6.4, 7.2), dpi=100)
        self.canvas = FigureCanvasAgg(self.figure)
        axes = self.figure.add_axes((0.01, 0.02, 0.80, 0.88))
        axes.set_axis_off()
        axes.set_xlim(CHICAGO_EXTENT["lon_min"], CHICAGO_EXTENT["lon_max"])
        axes.set_ylim(CHICAGO_EXTENT["lat_min"], CHICAGO_EXTENT["lat_max"])
        axes.set_aspect(1 / np.cos(np.radians((CHICAGO_EXTENT["lat_min"] + CHICAGO_EXTENT["lat_max"]) / 2)))
        self.axes = axes
        cmap = ListedColormap(colours)
        colourbar = self.figure.colorbar(ScalarMappable(BoundaryNorm(breaks, cmap.N), cmap),
                                         cax=self.figure.add_axes((0.84, 0.25, 0.035, 0.5)), ticks=breaks)
        colourbar.ax.set_yticklabels([tick_format.format(b) for b in breaks], fontsize=7.5)
        colourbar.set_label(legend_label, fontsize=8.5)
        colourbar.minorticks_off()
        if extra_legend:
            axes.legend(handles=extra_legend, loc="lower left", fontsize=7.5, frameon=False)
        # Aliased fills without edges: adjacent hexagons meet without seams, and drawing is ~3x cheaper.
        self.cells = PolyCollection([], edgecolors="none", antialiased=False)
        # A white halo under the outline keeps it visible on dark and light cells alike.
        self.halos = PolyCollection([], facecolors="none", edgecolors="white", linewidths=3.2)
        self.outlines = PolyCollection([], facecolors="none", edgecolors=_OUTLINE, linewidths=1.6)
        for collection in (self.cells, self.halos, self.outlines):
            axes.add_collection(collection)
        self.figure.text(0.02, 0.965, title, fontsize=11, weight="bold", va="top")
        self.month = self.figure.text(0.98, 0.965, "", fontsize=13, weight="bold", va="top", ha="right")
        self.subtitle = self.figure.text(0.02, 0.925, "", fontsize=8.5, va="top", color="#404040")
        self.dynamic = [self.cells, self.halos, self.outlines, self.month, self.subtitle]
        for artist in self.dynamic:
            artist.set_visible(False)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)
        for artist in self.dynamic:
            artist.set_visible(True)

    def draw(self, path: Path, polygons, colours, outlined: list[tuple[int, np.ndarray]], month: str,
             subtitle: str) -> Path:
        self.canvas.restore_region(self.background)
        self.cells.set_verts(polygons)
        self.cells.set_facecolors(colours)
        self.halos.set_verts([polygon for _, polygon in outlined])
        self.outlines.set_verts([polygon for _, polygon in outlined])
        self.month.set_text(month)
        self.subtitle.set_text(subtitle)
        ranks = [self.axes.annotate(str(rank), polygon.mean(axis=0), xytext=(5, 3), textcoords="offset points",
                                    fontsize=7, weight="bold", color=_OUTLINE) for rank, polygon in outlined]
        for artist in [*self.dynamic, *ranks]:
            self.figure.draw_artist(artist)
        for text in ranks:
            text.remove()
        width, height = self.canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.convert("RGB").save(path, format="PNG", compress_level=1)
        return path


class HotspotMapRenderer:
    """Renders ``<out_dir>/<month>_incidents.png`` and ``<out_dir>/<month>_arrest_rate.png``.

    ``max_incidents``: the busiest cell of all the months to be drawn, which fixes the incident classes.
    """

    def __init__(self, out_dir: str | Path, resolution: int, max_incidents: int, max_outlined: int = 10):
        self.out_dir = Path(out_dir)
        self.resolution = resolution
        self.max_outlined = max_outlined
        self.breaks = incident_breaks(max_incidents)
        self._boundaries: dict[str, np.ndarray] = {}
        self._incidents = _MapFigure(
            f"Chicago: incidents per H3 r{resolution} cell", self.breaks, _INCIDENT_COLOURS[:len(self.breaks) - 1],
            "incidents per cell", "{:,}")
        self._rates = _MapFigure(
            f"Chicago: arrest rate, H3 r{resolution} cell + ring-1 neighbours", _RATE_BREAKS, _RATE_COLOURS,
            "arrests / incidents over the cell and its neighbours", "{:.0%}",
            [Patch(facecolor=_NO_DATA, label=f"fewer than {MIN_POOLED_INCIDENTS} incidents around")])

    def render(self, month: str, cells: pd.DataFrame, hotspots: pd.DataFrame) -> MonthMaps:
        """``cells``: h3_cell, incidents, arrests, pooled_incidents, pooled_arrest_rate (every cell of the month
        at the renderer's resolution). ``hotspots``: h3_cell, rank (the month's hotspots, any order)."""
        cells = cells.reset_index(drop=True)
        polygons = hexagons(cells["h3_cell"].tolist(), self._boundaries)
        position = {cell: i for i, cell in enumerate(cells["h3_cell"])}
        top = hotspots.sort_values("rank").head(self.max_outlined)
        outlined = [(int(rank), polygons[position[cell]]) for cell, rank in zip(top["h3_cell"], top["rank"])
                    if cell in position]
        what = f"top {len(outlined)} of {len(hotspots)} hotspots outlined" if len(hotspots) else "no hotspots"
        counts = cells["incidents"].to_numpy()
        incidents = self._incidents.draw(
            self.out_dir / f"{month}_incidents.png", polygons, _INCIDENT_COLOURS[_classes(counts, self.breaks)],
            outlined, month, f"{int(counts.sum()):,} geolocated incidents in {len(cells):,} cells; {what}")
        rates = np.nan_to_num(cells["pooled_arrest_rate"].to_numpy(dtype=float))
        enough = cells["pooled_incidents"].to_numpy() >= MIN_POOLED_INCIDENTS
        colours = np.where(enough[:, None], _RATE_COLOURS[_classes(rates, _RATE_BREAKS)], to_rgba(_NO_DATA))
        arrest_rate = self._rates.draw(
            self.out_dir / f"{month}_arrest_rate.png", polygons, colours, outlined, month,
            f"{int(cells['arrests'].sum()):,} arrests / {int(counts.sum()):,} incidents; {what}")
        return MonthMaps(incidents, arrest_rate)


def render_months(cells: pd.DataFrame, hotspots: pd.DataFrame, out_dir: str | Path, resolution: int,
                  max_outlined: int = 10) -> dict[str, MonthMaps]:
    """The two maps of every month in ``cells`` (month plus the columns ``render`` takes), oldest first, with
    the incident classes fixed by the busiest cell of them all so the months compare."""
    if cells.empty:
        return {}
    renderer = HotspotMapRenderer(out_dir, resolution, int(cells["incidents"].max()), max_outlined)
    by_month = dict(tuple(hotspots.groupby("month")))
    return {month: renderer.render(month, month_cells, by_month.get(month, hotspots.iloc[0:0]))
            for month, month_cells in sorted(cells.groupby("month"))}


def thumbnail_markdown(paths: list[Path], width: int = 240, colours: int = 32) -> str:
    """The pictures shrunk to ``width`` pixels and palette-coded, as inline markdown images (~7 kB each)."""
    images = []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((width, width * 2))
            buffer = io.BytesIO()
            # A map is a few flat colours: a small palette keeps it readable.
            image.quantize(colours, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", optimize=True)
        images.append(f"![{path.stem}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})")
    return " ".join(images)
