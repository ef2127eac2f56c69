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
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import h3
import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg, get_hinting_flag
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PathCollection
from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgb, to_rgba
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath
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
_DPI = 100
_SUBTITLE_COLOUR = "#404040"
# The rank next to its hotspot: 5 points right of and 3 above the cell's centre, on the text's baseline.
_RANK_OFFSET_POINTS = (5, 3)
# Pictures drawn but not yet written: a bound on the memory a long backfill holds while the writer catches up.
_MAX_PENDING_WRITES = 8


@dataclass(frozen=True)
class MonthMaps:
    incidents: Path
    arrest_rate: Path


def hexagons(cells: list[str]) -> np.ndarray | list[np.ndarray]:
    """Each cell's boundary as (lon, lat) vertices: one (cells, 6, 2) array when all are hexagons (matplotlib
    builds those paths much faster), a list of arrays when a pentagon is among them."""
    polygons = [np.asarray(h3.cell_to_boundary(cell))[:, ::-1] for cell in cells]
    return np.stack(polygons) if polygons and all(len(p) == 6 for p in polygons) else polygons


def incident_breaks(max_count: int) -> list[int]:
    """The 1-2-5 class limits from 1 up to the first limit above ``max_count`` (at least 1-2-5-10)."""
    upper = next((i for i, b in enumerate(_INCIDENT_BREAKS) if b > max_count), len(_INCIDENT_BREAKS) - 1)
    return _INCIDENT_BREAKS[:max(upper, 3) + 1]


def _classes(values: np.ndarray, breaks: list[float]) -> np.ndarray:
    return np.clip(np.searchsorted(breaks, values, side="right") - 1, 0, len(breaks) - 2)


@dataclass(frozen=True)
class _Lettering:
    """One line of text rasterised by FreeType in one go (``matplotlib.ft2font``), as matplotlib's Agg backend
    drew text up to 3.10. Matplotlib 3.11 renders and places each glyph separately, ~4x slower: a map's
    subtitle alone cost twice as much as its ~800 hexagons. Same font, size, hinting and placement rules, so the
    same text; a glyph may sit up to half a pixel from where 3.11 would put it."""

    coverage: np.ndarray  # (rows, columns), 0-1
    # In pixels, as matplotlib's text layout measures them: the ink's extent and its part below the baseline.
    width: float
    height: float
    descent: float
    bitmap_x_offset: float


@lru_cache(maxsize=16)
def _lettering(text: str, size: float, weight: str, dpi: float) -> _Lettering:
    """Cached for the texts that recur: the rank numbers on every map, the month on its two maps, "lp"."""
    font = get_font(findfont(FontProperties(size=size, weight=weight)))
    font.clear()
    font.set_size(size, dpi)
    font.set_text(text, 0, flags=get_hinting_flag())
    font.draw_glyphs_to_bitmap(antialiased=True)
    width, height = font.get_width_height()
    return _Lettering(np.asarray(font.get_image()) / 255, width / 64, height / 64, font.get_descent() / 64,
                      font.get_bitmap_offset()[0] / 64)


def _letter(pixels: np.ndarray, text: str, xy: tuple[float, float], colour: str, size: float,
            weight: str = "normal", ha: str = "left", va: str = "baseline") -> None:
    """Blends ``text`` into ``pixels`` (an opaque picture, rows from the top) where
    ``figure.text(*xy, text, transform=None, ha=ha, va=va, ...)`` would draw it (``xy``: display pixels, y
    upwards). Only the alignments the maps use: left or right, baseline or top."""
    lettering = _lettering(text, size, weight, _DPI)
    x, baseline = xy
    if ha == "right":
        x -= lettering.width
    if va == "top":
        # matplotlib's line box reaches at least as high and as low as "lp" does
        lp = _lettering("lp", size, weight, _DPI)
        baseline -= max(lettering.height, lp.height) - max(lettering.descent, lp.descent)
    # As Agg <= 3.10 placed the bitmap: its bottom row one below the baseline lowered by the text's descent.
    bottom = round(pixels.shape[0] - baseline + lettering.descent) + 1
    _blend(pixels, lettering.coverage, to_rgb(colour), bottom - lettering.coverage.shape[0],
           round(x + lettering.bitmap_x_offset))


def _blend(pixels: np.ndarray, coverage: np.ndarray, rgb: tuple[float, float, float], top: int, left: int) -> None:
    """Paints ``rgb`` (0-1) over ``pixels`` by ``coverage`` from (``top``, ``left``); what falls outside the
    picture is left out."""
    height, width = pixels.shape[:2]
    rows = slice(max(top, 0), min(top + coverage.shape[0], height))
    columns = slice(max(left, 0), min(left + coverage.shape[1], width))
    if rows.start >= rows.stop or columns.start >= columns.stop:
        return
    alpha = coverage[rows.start - top:rows.stop - top, columns.start - left:columns.stop - left, None]
    under = pixels[rows, columns, :3]
    under[:] = np.rint(under + (np.multiply(rgb, 255) - under) * alpha)


_NO_PIXELS = (slice(0, 0), slice(0, 0))


@dataclass(frozen=True)
class _CellRaster:
    """Which hexagon the aliased fills of ``_MapFigure.draw`` paint on each pixel (``_MapFigure.rasterise``).

    An aliased fill takes every pixel its hexagon touches, so a pixel on a shared edge is filled by both cells
    and shows the one drawn last. ``top`` holds that path (1-based, 0: none) for the pixels in ``box`` (rows
    and columns around the paths); ``shared`` the pixels (flat, in the box) that two or more paths touch and
    ``first`` the first drawn of them there, the one that shows when the topmost is not in a month. Where three
    hexagons meet the middle one is not kept: such a pixel stays background when only that cell is in the month.
    """

    paths: int
    box: tuple[slice, slice]
    top: np.ndarray
    shared: np.ndarray
    first: np.ndarray

    def fills(self, cells: np.ndarray, colours) -> np.ndarray:
        """The box's pixels as the canvas's 32-bit RGBA numbers: the colour of the cell that shows there
        (``cells``: positions among the paths, ``colours``: RGBA 0-1), 0 where none of ``cells`` does."""
        lookup = np.zeros(self.paths + 1, np.uint32)
        lookup[cells + 1] = _packed(colours)
        pixels = np.take(lookup, self.top)
        shown = pixels.ravel()[self.shared]
        pixels.ravel()[self.shared] = np.where(shown != 0, shown, lookup[self.first])
        return pixels


class _MapFigure:
    """One figure drawn once with its fixed parts (frame, colour bar, legend, title), then per month only
    the hexagons and outlines are drawn over a copy of that background: several times faster than drawing a
    new figure for each of a backfill's maps. The hexagons are rasterised by matplotlib once (``rasterise``)
    and each month's fills painted from that raster; the outlines are drawn by matplotlib over them. The
    month, subtitle and rank numbers are then lettered onto a copy of the pixels (``_letter``)."""

    def __init__(self, title: str, breaks: list[float], colours: np.ndarray, legend_label: str, tick_format: str,
                 extra_legend: list[Patch] | None = None):
        self.figure = Figure(figsize=(6.4, 7.2), dpi=_DPI)
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
        # Aliased fills without edges: each pixel shows one cell or none, so the fills can be painted from a
        # raster of the cells (``rasterise``), and adjacent hexagons meet without seams.
        self.cells = PathCollection([], edgecolors="none", antialiased=False)
        # A white halo under the outline keeps it visible on dark and light cells alike.
        self.halos = PathCollection([], facecolors="none", edgecolors="white", linewidths=3.2)
        self.outlines = PathCollection([], facecolors="none", edgecolors=_OUTLINE, linewidths=1.6)
        self.dynamic = [self.cells, self.halos, self.outlines]
        for collection in self.dynamic:
            axes.add_collection(collection)
            collection.set_visible(False)
        self.figure.text(0.02, 0.965, title, fontsize=11, weight="bold", va="top")
        self.month_xy = self.figure.transFigure.transform((0.98, 0.965))
        self.subtitle_xy = self.figure.transFigure.transform((0.02, 0.925))
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)
        # The frame is fixed from here on: frozen, these transforms skip rebuilding matplotlib's transform tree
        # (~0.3 ms for each rank number otherwise).
        self.data_to_pixels = axes.transData.frozen()
        self.frame = (axes.patch.get_path(), axes.patch.get_transform().frozen())
        for collection in self.dynamic:
            collection.set_visible(True)

    def rasterise(self, paths: list[MplPath]) -> _CellRaster:
        """Which of ``paths`` ``draw`` would fill each pixel with, worked out once: the frame is the same for
        every map, so a month's fills then cost a lookup per pixel instead of ~3 ms of matplotlib per map."""
        top = self._rasterised_ids(paths, np.arange(1, len(paths) + 1))
        first = self._rasterised_ids(paths[::-1], np.arange(len(paths), 0, -1))
        rows, columns = (np.flatnonzero(top.any(axis=axis)) for axis in (1, 0))
        box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)) if len(rows) else _NO_PIXELS
        top, first = top[box].astype(np.intp), first[box].ravel()
        shared = np.flatnonzero(top.ravel() != first)
        return _CellRaster(len(paths), box, top, shared, first[shared])

    def _rasterised_ids(self, paths: list[MplPath], ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` (one per path, above 0) each pixel of the figure shows when the paths are filled
        in order, each in an opaque colour whose red, green and blue bytes encode its id (0: no path)."""
        self.canvas.get_renderer().clear()
        self.cells.set_paths(paths)
        self.cells.set_facecolors(np.column_stack([ids & 255, ids >> 8 & 255, ids >> 16 & 255,
                                                   np.full(len(ids), 255)]) / 255)
        self.figure.draw_artist(self.cells)
        # Each pixel's RGBA bytes as one little-endian number: red is its lowest byte, alpha its highest. A
        # cleared canvas is transparent white, aliased fills opaque: only opaque pixels are a path's.
        pixels = np.asarray(self.canvas.buffer_rgba()).view("<u4")[..., 0]
        return (pixels & 0xFFFFFF) * (pixels >= 0xFF000000)

    def draw(self, raster: _CellRaster, cells: np.ndarray, colours, outlined: list[tuple[int, MplPath]],
             month: str, subtitle: str) -> np.ndarray:
        """The picture as a fresh (rows, columns, RGBA) array: the canvas is reused by the next map. ``cells``:
        the positions, among the paths ``raster`` was made of, of the cells to fill with ``colours``."""
        self.canvas.restore_region(self.background)
        fills = raster.fills(cells, colours)
        # Into the canvas itself, so the outlines are drawn over the fills as before.
        canvas = np.asarray(self.canvas.buffer_rgba())[raster.box].view(np.uint32)[..., 0]
        np.copyto(canvas, fills, where=fills != 0)
        self.halos.set_paths([path for _, path in outlined])
        self.outlines.set_paths([path for _, path in outlined])
        for collection in (self.halos, self.outlines):
            self.figure.draw_artist(collection)
        pixels = np.array(self.canvas.buffer_rgba())
        _letter(pixels, month, self.month_xy, "black", 13, "bold", ha="right", va="top")
        _letter(pixels, subtitle, self.subtitle_xy, _SUBTITLE_COLOUR, 8.5, va="top")
        for rank, path in outlined:
            self._letter_rank(pixels, rank, path)
        return pixels

    def _letter_rank(self, pixels: np.ndarray, rank: int, path: MplPath) -> None:
        """Where ``axes.annotate(str(rank), centre, xytext=_RANK_OFFSET_POINTS, textcoords="offset points")``
        would put it, and like it only when the centre lies inside the axes."""
        centre = self.data_to_pixels.transform(path.vertices[:-1].mean(axis=0))
        frame, to_pixels = self.frame
        if frame.contains_point(centre, to_pixels, radius=1.0):  # as axes.contains_point tests
            offset = np.asarray(_RANK_OFFSET_POINTS) * _DPI / 72
            _letter(pixels, str(rank), centre + offset, _OUTLINE, 7, "bold")


def _packed(colours) -> np.ndarray:
    """RGBA colours (0-1) as the canvas's 32-bit pixels, each channel rounded to 8 bits as Agg rounds it."""
    channels = np.floor(np.asarray(colours, dtype=float) * 255 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(channels).view(np.uint32)[:, 0]


def _write_png(pixels: np.ndarray, path: Path) -> Path:
    """Runs on the renderer's writer thread, overlapping the drawing of the next map: numpy and zlib do most
    of the work with the GIL released."""
    path.write_bytes(_png(pixels))
    return path


def _png(rgba: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of an opaque picture (rows, columns, RGBA), every row "Up"-filtered (less the row
    above) and deflated at level 1. Pillow tries all five PNG filters on every row, most of its ~11 ms per
    map; a map's flat colours repeat from row to row, so "Up" alone compresses as well (~43 kB) in ~4 ms."""
    height, width, _ = rgba.shape
    up = np.empty_like(rgba)
    up[0] = rgba[0]  # above the first row the PNG filters see zeros
    np.subtract(rgba[1:], rgba[:-1], out=up[1:])
    scanlines = np.empty((height, 1 + width * 3), np.uint8)
    scanlines[:, 0] = 2  # each row's filter type: "Up"
    for channel in range(3):  # numpy copies a channel at a time ~8x faster than the three at once
        scanlines[:, 1 + channel::3] = up[:, :, channel]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, deflate, filtered, no interlace
    return b"".join([b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(scanlines, 1)), _png_chunk(b"IEND", b"")])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


class HotspotMapRenderer:
    """Renders ``<out_dir>/<month>_incidents.png`` and ``<out_dir>/<month>_arrest_rate.png``.

    ``max_incidents``: the busiest cell of all the months to be drawn, which fixes the incident classes.
    The PNG files are encoded and written on a writer thread while the next maps are drawn; ``render`` waits
    for its own files, ``queue`` does not: call ``close`` (or use the renderer as a context manager) to wait
    for every file.
    """

    def __init__(self, out_dir: str | Path, resolution: int, max_incidents: int, max_outlined: int = 10):
        self.out_dir = Path(out_dir)
        self.resolution = resolution
        self.max_outlined = max_outlined
        self.breaks = incident_breaks(max_incidents)
        self._paths: dict[str, MplPath] = {}
        self._rasterised: dict[str, int] = {}  # cell -> its position among the rasterised paths
        self._raster = _CellRaster(0, _NO_PIXELS, np.zeros((0, 0), np.intp), np.zeros(0, np.intp),
                                   np.zeros(0, np.intp))
        self._incidents = _MapFigure(
            f"Chicago: incidents per H3 r{resolution} cell", self.breaks, _INCIDENT_COLOURS[:len(self.breaks) - 1],
            "incidents per cell", "{:,}")
        self._rates = _MapFigure(
            f"Chicago: arrest rate, H3 r{resolution} cell + ring-1 neighbours", _RATE_BREAKS, _RATE_COLOURS,
            "arrests / incidents over the cell and its neighbours", "{:.0%}",
            [Patch(facecolor=_NO_DATA, label=f"fewer than {MIN_POOLED_INCIDENTS} incidents around")])
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotspot-maps")
        self._pending: deque[Future] = deque()

    def __enter__(self) -> HotspotMapRenderer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def render(self, month: str, cells: pd.DataFrame, hotspots: pd.DataFrame) -> MonthMaps:
        """``cells``: h3_cell, incidents, arrests, pooled_incidents, pooled_arrest_rate (every cell of the month
        at the renderer's resolution). ``hotspots``: h3_cell, rank (the month's hotspots, any order). Returns
        once both files are written."""
        maps = self.queue(month, cells, hotspots)
        self.flush()
        return maps

    def queue(self, month: str, cells: pd.DataFrame, hotspots: pd.DataFrame) -> MonthMaps:
        """As ``render``, but returns as soon as the maps are drawn, before their files are written."""
        names = cells["h3_cell"].tolist()
        self.add_cells(names)
        positions = np.fromiter((self._rasterised[cell] for cell in names), np.intp, len(names))
        top = hotspots.sort_values("rank").head(self.max_outlined)
        present = set(names)
        outlined = [(int(rank), self._paths[cell]) for cell, rank in zip(top["h3_cell"], top["rank"])
                    if cell in present]
        what = f"top {len(outlined)} of {len(hotspots)} hotspots outlined" if len(hotspots) else "no hotspots"
        counts = cells["incidents"].to_numpy()
        incidents = self._write(self.out_dir / f"{month}_incidents.png", self._incidents.draw(
            self._raster, positions, _INCIDENT_COLOURS[_classes(counts, self.breaks)], outlined, month,
            f"{int(counts.sum()):,} geolocated incidents in {len(cells):,} cells; {what}"))
        rates = np.nan_to_num(cells["pooled_arrest_rate"].to_numpy(dtype=float))
        enough = cells["pooled_incidents"].to_numpy() >= MIN_POOLED_INCIDENTS
        colours = np.where(enough[:, None], _RATE_COLOURS[_classes(rates, _RATE_BREAKS)], to_rgba(_NO_DATA))
        arrest_rate = self._write(self.out_dir / f"{month}_arrest_rate.png", self._rates.draw(
            self._raster, positions, colours, outlined, month,
            f"{int(cells['arrests'].sum()):,} arrests / {int(counts.sum()):,} incidents; {what}"))
        return MonthMaps(incidents, arrest_rate)

    def add_cells(self, cells: list[str]) -> None:
        """Rasterises the hexagons of ``cells`` with those already rasterised, if any of them is new: a month
        can only fill rasterised cells. ``render_months`` adds every month's cells up front, so that happens
        once per run."""
        new = [cell for cell in dict.fromkeys(cells) if cell not in self._rasterised]
        if new:
            # sorted: which cell shows on a shared edge does not depend on the order the rows came in
            union = sorted([*self._rasterised, *new])
            self._rasterised = {cell: i for i, cell in enumerate(union)}
            # both figures lay out the map's axes alike: one raster serves both
            self._raster = self._incidents.rasterise(self._cell_paths(union))

    def flush(self) -> None:
        """Waits until every queued file is written; raises the first failure to write one."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Waits for the queued files (see ``flush``) and stops the writer thread."""
        try:
            self.flush()
        finally:
            self._writer.shutdown()

    def _cell_paths(self, cells: list[str]) -> list[MplPath]:
        """Each cell's hexagon as a closed path, kept for the outlines and for rasterising again when a month
        brings new cells."""
        missing = [cell for cell in cells if cell not in self._paths]
        for cell, boundary in zip(missing, hexagons(missing)):
            self._paths[cell] = MplPath(np.vstack([boundary, boundary[:1]]), closed=True)
        return [self._paths[cell] for cell in cells]

    def _write(self, path: Path, pixels: np.ndarray) -> Path:
        """Hands the picture to the writer thread, first waiting for the oldest file when too many are queued."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(self._pending) >= _MAX_PENDING_WRITES:
            self._pending.popleft().result()
        self._pending.append(self._writer.submit(_write_png, pixels, path))
        return path


def render_months(cells: pd.DataFrame, hotspots: pd.DataFrame, out_dir: str | Path, resolution: int,
                  max_outlined: int = 10) -> dict[str, MonthMaps]:
    """The two maps of every month in ``cells`` (month plus the columns ``render`` takes), oldest first, with
    the incident classes fixed by the busiest cell of them all so the months compare. Returns once every
    file is written."""
    if cells.empty:
        return {}
    by_month = dict(tuple(hotspots.groupby("month")))
    with HotspotMapRenderer(out_dir, resolution, int(cells["incidents"].max()), max_outlined) as renderer:
        renderer.add_cells(cells["h3_cell"].tolist())
        return {month: renderer.queue(month, month_cells, by_month.get(month, hotspots.iloc[0:0]))
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
