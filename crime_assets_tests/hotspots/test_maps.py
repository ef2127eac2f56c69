"""The hotspot maps as a reader sees them: the PNG files, the colours at known cells, the numbered outlines."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import h3
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from PIL import Image

from crime_assets.hotspots.maps import _INCIDENT_COLOURS, _NO_DATA, _OUTLINE, _RATE_COLOURS, render_months

CENTRE = h3.latlng_to_cell(41.8819, -87.6278, 8)  # the Loop
CELLS = sorted(h3.grid_disk(CENTRE, 4))  # 61 neighbouring r8 cells
HOT = CENTRE  # 400 incidents, pooled arrest rate 0.6
QUIET = h3.grid_ring(CENTRE, 2)[0]  # 10 incidents, too few pooled incidents for a rate
# Ranked 1-4 in a month with hotspots: three 120 degrees apart on the ring of distance 3, the last north on ring 4.
HOTSPOTS = [*h3.grid_ring(CENTRE, 3)[::6], h3.grid_ring(CENTRE, 4)[3]]
# Every other cell has 3 incidents (class 2-5) and a pooled rate of 2% (class 0-5%); each named cell has a
# count class of its own, so its hexagon can be found on the map by its colour.
COUNTS = {HOT: 400, QUIET: 10, **dict(zip(HOTSPOTS, [150, 70, 30, 7]))}
INCIDENT_CLASS = {3: 1, 7: 2, 10: 3, 30: 4, 70: 5, 150: 6, 400: 7}  # classes of 1-2-5-10-...-500
MAP_COLUMNS = 520  # the map's part of the 640 pixels across; the colour bar is right of it
NO_HOTSPOTS = pd.DataFrame({"month": [], "h3_cell": [], "rank": []})


def month(key: str, counts: dict[str, int] = COUNTS) -> pd.DataFrame:
    return pd.DataFrame({
        "month": key, "h3_cell": CELLS, "incidents": [counts.get(cell, 3) for cell in CELLS],
        "arrests": 1, "pooled_incidents": [5 if cell == QUIET else 400 for cell in CELLS],
        "pooled_arrest_rate": [0.6 if cell == HOT else 0.02 for cell in CELLS]})


def ranked(key: str, ranks: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"month": key, "h3_cell": HOTSPOTS, "rank": ranks})


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def rgb(colour) -> np.ndarray:
    return np.floor(np.asarray(to_rgb(colour)) * 255 + 0.5).astype(int)


def painted(image: np.ndarray, colour) -> np.ndarray:
    """Where ``colour`` is on the map (the colour bar left out): a mask of the picture's pixels."""
    mask = np.all(np.abs(image - rgb(colour)) <= 1, axis=2)
    mask[:, MAP_COLUMNS:] = False
    return mask


def centre_of(image: np.ndarray, colour) -> np.ndarray:
    """(row, column) of the middle of the one hexagon painted ``colour``."""
    rows, columns = np.nonzero(painted(image, colour))
    assert 40 < len(rows) < 200 and np.ptp(rows) < 20 and np.ptp(columns) < 20  # one r8 hexagon, ~90 pixels
    return np.array([round(rows.mean()), round(columns.mean())])


def near(mask: np.ndarray, centre: np.ndarray, radius: int = 16) -> np.ndarray:
    """``mask``'s pixels within ``radius`` of ``centre`` as (row, column) offsets from it."""
    offsets = np.argwhere(mask) - centre
    return offsets[np.abs(offsets).max(axis=1) <= radius]


def test_each_month_gets_two_pngs_that_differ_in_the_month_and_metric_they_name(tmp_path):
    drawn = render_months(pd.concat([month("2016-05"), month("2016-04")]), NO_HOTSPOTS, tmp_path, 8)
    assert list(drawn) == ["2016-04", "2016-05"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2016-04_arrest_rate.png", "2016-04_incidents.png", "2016-05_arrest_rate.png", "2016-05_incidents.png"]
    for maps in drawn.values():
        for path in (maps.incidents, maps.arrest_rate):
            with Image.open(path) as image:
                assert image.format == "PNG" and image.size == (640, 720)
                image.verify()
    april, may = pixels(drawn["2016-04"].incidents), pixels(drawn["2016-05"].incidents)
    # The same cells in both months: only the month in the top right corner differs.
    rows, columns = np.nonzero(np.any(april != may, axis=2))
    assert len(rows) > 20 and rows.max() < 50 and columns.min() > 500
    # The metric's title, top left, differs between the two maps of a month.
    assert np.any(april[:40, :300] != pixels(drawn["2016-04"].arrest_rate)[:40, :300])


def test_a_cells_colour_follows_its_count_and_its_pooled_arrest_rate(tmp_path):
    cooled = {**COUNTS, HOT: 3}  # in May the hot cell is as quiet as its neighbours
    drawn = render_months(pd.concat([month("2016-04"), month("2016-05", cooled)]), NO_HOTSPOTS, tmp_path, 8)
    incidents, rates = pixels(drawn["2016-04"].incidents), pixels(drawn["2016-04"].arrest_rate)
    hot = tuple(centre_of(incidents, _INCIDENT_COLOURS[INCIDENT_CLASS[400]]))
    assert np.array_equal(rates[hot], rgb(_RATE_COLOURS[8]))  # 0.6: the class 50-75%
    assert not np.array_equal(incidents[hot], rates[hot])
    # The hot cell and its ring-1 neighbours meet without seams: only their two colours around it.
    around = incidents[hot[0] - 12:hot[0] + 13, hot[1] - 12:hot[1] + 13]
    colours = {tuple(rgb(_INCIDENT_COLOURS[INCIDENT_CLASS[n]])) for n in (400, 3)}
    assert {tuple(p) for p in around.reshape(-1, 3)} == colours
    assert painted(rates, _RATE_COLOURS[0]).sum() > 40 * 50  # the other cells: 0-5%, a lighter colour
    quiet = tuple(centre_of(incidents, _INCIDENT_COLOURS[INCIDENT_CLASS[10]]))
    assert np.array_equal(rates[quiet], rgb(_NO_DATA))
    # Every month in the same frame: in May the same pixel shows the neighbours' class.
    assert np.array_equal(pixels(drawn["2016-05"].incidents)[hot], rgb(_INCIDENT_COLOURS[INCIDENT_CLASS[3]]))


def test_the_top_hotspots_are_outlined_and_numbered(tmp_path):
    cells = pd.concat([month(key) for key in ("2016-04", "2016-05", "2016-06")])
    found = pd.concat([ranked("2016-04", [1, 2, 3, 4]), ranked("2016-05", [3, 2, 1, 4])])  # 2016-06: none
    drawn = render_months(cells, found, tmp_path, 8, max_outlined=3)
    plain = pixels(drawn["2016-06"].incidents)
    centres = [centre_of(plain, _INCIDENT_COLOURS[INCIDENT_CLASS[COUNTS[cell]]]) for cell in HOTSPOTS]
    for kind in ("incidents", "arrest_rate"):
        outlined = pixels(getattr(drawn["2016-04"], kind))
        changed = np.any(outlined != pixels(getattr(drawn["2016-06"], kind)), axis=2)
        changed[:80] = False  # the subtitle names the hotspots too
        # Outlines (and their numbers) around the top three, nothing else on the map changes.
        for centre in centres[:3]:
            assert len(near(changed, centre)) > 60
            assert len(near(painted(outlined, _OUTLINE), centre)) > 20
        assert len(near(changed, centres[3])) == 0  # the fourth is beyond max_outlined
        assert sum(len(near(changed, centre)) for centre in centres[:3]) == changed.sum()

        # Ranks 1 and 3 swapped: the same outlines, only the numbers beside those two cells change,
        # right of each cell's centre and no lower than it.
        swapped = np.any(outlined != pixels(getattr(drawn["2016-05"], kind)), axis=2)
        assert swapped[:80].any()  # the subtitle does not change, but the rank numbers do:
        swapped[:80] = False
        for centre in (centres[0], centres[2]):
            offsets = near(swapped, centre)
            assert len(offsets) > 5 and (offsets[:, 1] > 0).all() and (offsets[:, 0] <= 2).all()
        assert len(near(swapped, centres[1])) == 0


def test_maps_do_not_depend_on_the_order_of_the_rows(tmp_path):
    rng = np.random.default_rng(7)
    cells = pd.DataFrame({"month": "2016-04", "h3_cell": CELLS, "incidents": rng.integers(1, 300, len(CELLS)),
                          "arrests": 3, "pooled_incidents": 30, "pooled_arrest_rate": rng.random(len(CELLS))})
    found = pd.DataFrame({"month": "2016-04", "h3_cell": CELLS[:3], "rank": [1, 2, 3]})
    drawn = render_months(cells, found, tmp_path / "sorted", 8)["2016-04"]
    shuffled = render_months(cells.sample(frac=1, random_state=1), found, tmp_path / "shuffled", 8)["2016-04"]
    assert drawn.incidents.read_bytes() == shuffled.incidents.read_bytes()
    assert drawn.arrest_rate.read_bytes() == shuffled.arrest_rate.read_bytes()


def test_maps_drawn_on_two_threads_at_once_are_the_maps_drawn_alone(tmp_path):
    cells = pd.concat([month(key) for key in ("2016-04", "2016-05", "2016-06")])
    found = ranked("2016-05", [1, 2, 3, 4])
    alone = render_months(cells, found, tmp_path / "alone", 8)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda name: render_months(cells, found, tmp_path / name, 8), ["a", "b"]))
    for run in runs:
        for key, maps in alone.items():
            assert run[key].incidents.read_bytes() == maps.incidents.read_bytes()
            assert run[key].arrest_rate.read_bytes() == maps.arrest_rate.read_bytes()
