"""Maps of a month's H3 cells drawn from their hexagon boundaries with matplotlib (no tiles).

Two pictures per month: incidents per cell on a 1-2-5 class scale, and the neighbour-pooled arrest rate
(greyed where fewer than ``MIN_POOLED_INCIDENTS`` incidents back it). The month's top hotspots are
outlined and numbered by rank. Every month of a run shares the frame (Chicago's extent, longitude
stretched by 1/cos(latitude) so hexagons keep their shape) and the colour classes, so months compare
at a glance. Each map is its own ``Figure`` on an Agg canvas, without pyplot: no global state, no display.
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

from crime_assets.common.geo import CHICAGO_EXTENT

MIN_POOLED_INCIDENTS = 20
_NO_DATA = "#d9d9d9"
_OUTLINE = "#08306b"
_INCIDENT_BREAKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000]
# One colour per class, fixed: the scale darkens over the first ten classes (1-1000, what cells of r7-r10
# reach in a month) and stays darkest above.
_INCIDENT_COLOURS = matplotlib.colormaps["YlOrRd"](np.r_[np.linspace(0.05, 1.0, 10), np.ones(5)])
_RATE_BREAKS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0]
_RATE_COLOURS = matplotlib.colormaps["viridis_r"](np.linspace(0.0, 0.95, len(_RATE_BREAKS) - 1))
_SIZE_INCHES, _DPI = (6.4, 7.2), 100


@dataclass(frozen=True)
class MonthMaps:
    incidents: Path
    arrest_rate: Path


@dataclass(frozen=True)
class _Scale:
    """What every map of one metric shares: its title and its colour classes with the colour bar's wording."""

    title: str
    breaks: list[float]
    colours: np.ndarray
    label: str
    tick_format: str
    legend: tuple[Patch, ...] = ()


def incident_breaks(max_count: int) -> list[int]:
    """The 1-2-5 class limits from 1 up to the first limit above ``max_count`` (at least 1-2-5-10)."""
    upper = next((i for i, b in enumerate(_INCIDENT_BREAKS) if b > max_count), len(_INCIDENT_BREAKS) - 1)
    return _INCIDENT_BREAKS[:max(upper, 3) + 1]


def _classes(values: np.ndarray, breaks: list[float]) -> np.ndarray:
    return np.clip(np.searchsorted(breaks, values, side="right") - 1, 0, len(breaks) - 2)


def _draw(path: Path, scale: _Scale, hexagons: list[np.ndarray], colours: np.ndarray,
          outlined: list[tuple[int, np.ndarray]], month: str, subtitle: str) -> Path:
    """One map: ``hexagons`` ((lon, lat) vertices) filled with ``colours``, ``outlined`` (rank, hexagon)
    outlined and numbered, written to ``path`` as PNG."""
    figure = Figure(figsize=_SIZE_INCHES, dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.01, 0.02, 0.80, 0.88))
    axes.set_axis_off()
    axes.set_xlim(CHICAGO_EXTENT["lon_min"], CHICAGO_EXTENT["lon_max"])
    axes.set_ylim(CHICAGO_EXTENT["lat_min"], CHICAGO_EXTENT["lat_max"])
    axes.set_aspect(1 / np.cos(np.radians((CHICAGO_EXTENT["lat_min"] + CHICAGO_EXTENT["lat_max"]) / 2)))
    # Aliased fills without edges: adjacent hexagons meet without the pale seams antialiasing leaves.
    axes.add_collection(PolyCollection(hexagons, facecolors=colours, edgecolors="none", antialiased=False))
    hot = [hexagon for _, hexagon in outlined]
    # A white halo under the outline keeps it visible on dark and light cells alike.
    axes.add_collection(PolyCollection(hot, facecolors="none", edgecolors="white", linewidths=3.2))
    axes.add_collection(PolyCollection(hot, facecolors="none", edgecolors=_OUTLINE, linewidths=1.6))
    for rank, hexagon in outlined:
        axes.annotate(str(rank), hexagon.mean(axis=0), xytext=(5, 3), textcoords="offset points", fontsize=7,
                      weight="bold", color=_OUTLINE)
    if scale.legend:
        axes.legend(handles=list(scale.legend), loc="lower left", fontsize=7.5, frameon=False)

    cmap = ListedColormap(scale.colours)
    colourbar = figure.colorbar(ScalarMappable(BoundaryNorm(scale.breaks, cmap.N), cmap),
                                cax=figure.add_axes((0.84, 0.25, 0.035, 0.5)), ticks=scale.breaks)
    colourbar.ax.set_yticklabels([scale.tick_format.format(b) for b in scale.breaks], fontsize=7.5)
    colourbar.set_label(scale.label, fontsize=8.5)
    colourbar.minorticks_off()

    figure.text(0.02, 0.965, scale.title, fontsize=11, weight="bold", va="top")
    figure.text(0.98, 0.965, month, fontsize=13, weight="bold", va="top", ha="right")
    figure.text(0.02, 0.925, subtitle, fontsize=8.5, va="top", color="#404040")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _render_month(out_dir: Path, scales: tuple[_Scale, _Scale], month: str, cells: pd.DataFrame,
                  hotspots: pd.DataFrame, max_outlined: int) -> MonthMaps:
    # Sorted: which cell shows on a shared edge does not depend on the order the rows came in.
    cells = cells.sort_values("h3_cell")
    hexagons = [np.asarray(h3.cell_to_boundary(cell))[:, ::-1] for cell in cells["h3_cell"]]
    position = dict(zip(cells["h3_cell"], range(len(cells))))
    top = hotspots.sort_values("rank").head(max_outlined)
    outlined = [(int(rank), hexagons[position[cell]]) for cell, rank in zip(top["h3_cell"], top["rank"])
                if cell in position]
    what = f"top {len(outlined)} of {len(hotspots)} hotspots outlined" if len(hotspots) else "no hotspots"
    counts = cells["incidents"].to_numpy()
    incident_scale, rate_scale = scales
    incidents = _draw(
        out_dir / f"{month}_incidents.png", incident_scale, hexagons,
        _INCIDENT_COLOURS[_classes(counts, incident_scale.breaks)], outlined, month,
        f"{int(counts.sum()):,} geolocated incidents in {len(cells):,} cells; {what}")
    rates = np.nan_to_num(cells["pooled_arrest_rate"].to_numpy(dtype=float))
    enough = cells["pooled_incidents"].to_numpy() >= MIN_POOLED_INCIDENTS
    colours = np.where(enough[:, None], _RATE_COLOURS[_classes(rates, _RATE_BREAKS)], to_rgba(_NO_DATA))
    arrest_rate = _draw(
        out_dir / f"{month}_arrest_rate.png", rate_scale, hexagons, colours, outlined, month,
        f"{int(cells['arrests'].sum()):,} arrests / {int(counts.sum()):,} incidents; {what}")
    return MonthMaps(incidents, arrest_rate)


def render_months(cells: pd.DataFrame, hotspots: pd.DataFrame, out_dir: str | Path, resolution: int,
                  max_outlined: int = 10) -> dict[str, MonthMaps]:
    """Writes ``<out_dir>/<month>_incidents.png`` and ``<out_dir>/<month>_arrest_rate.png`` for every month in
    ``cells`` (month, h3_cell, incidents, arrests, pooled_incidents, pooled_arrest_rate: every cell of the month
    at ``resolution``), oldest first, with the top ``max_outlined`` of ``hotspots`` (month, h3_cell, rank)
    outlined. The incident classes are fixed by the busiest cell of all the months, so the months compare."""
    if cells.empty:
        return {}
    breaks = incident_breaks(int(cells["incidents"].max()))
    scales = (
        _Scale(f"Chicago: incidents per H3 r{resolution} cell", breaks, _INCIDENT_COLOURS[:len(breaks) - 1],
               "incidents per cell", "{:,}"),
        _Scale(f"Chicago: arrest rate, H3 r{resolution} cell + ring-1 neighbours", _RATE_BREAKS, _RATE_COLOURS,
               "arrests / incidents over the cell and its neighbours", "{:.0%}",
               (Patch(facecolor=_NO_DATA, label=f"fewer than {MIN_POOLED_INCIDENTS} incidents around"),)),
    )
    by_month = dict(tuple(hotspots.groupby("month")))
    return {month: _render_month(Path(out_dir), scales, month, month_cells, by_month.get(month, hotspots.iloc[0:0]),
                                 max_outlined)
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
