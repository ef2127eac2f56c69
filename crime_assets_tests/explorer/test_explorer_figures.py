"""The explorer's figures, place names and command line, without a browser or a warehouse."""

from __future__ import annotations

import math

import h3
import pandas as pd
import pytest

from crime_assets.explorer import figures
from crime_assets.explorer.__main__ import streamlit_args
from crime_assets.explorer.geometry import TILE_PX, digit_lines, fit_view
from crime_assets.explorer.places import CellNames, breadcrumbs, place_name


def cells_frame(n: int = 30) -> pd.DataFrame:
    cells = sorted(h3.grid_disk(h3.latlng_to_cell(41.88, -87.63, 8), 3))[:n]
    return pd.DataFrame({
        "h3_cell": cells, "incidents": range(n, 0, -1), "arrests": [i // 3 for i in range(n, 0, -1)],
        "arrest_rate": 0.3, "arrest_rate_lower": 0.2, "arrest_rate_upper": 0.4, "is_low_confidence": [i % 2 == 0 for i in range(n)],
        "pooled_incidents": 50, "pooled_arrests": 10, "pooled_arrest_rate": 0.2, "label": [f"00{i}XX N STATE ST, Loop, district 1" for i in range(n)],
        "top_block": "001XX N STATE ST", "district": 1, "community_area_name": "Loop",
        "hotspot_rank": [float(i + 1) if i < 12 else float("nan") for i in range(n)],
    })


def test_the_map_draws_every_cell_fades_low_confidence_and_outlines_the_top_hotspots():
    frame = cells_frame()
    figure = figures.map_figure(frame, "pooled_arrest_rate", place=None, tiles_url=None)
    cells = figure.data[0]
    assert list(cells.locations) == frame["h3_cell"].tolist() and [row[0] for row in cells.customdata] == frame["h3_cell"].tolist()
    assert [o < 0.5 for o in cells.marker.opacity] == frame["is_low_confidence"].tolist()
    assert "001XX N STATE ST" not in cells.hovertemplate and "%{customdata[1]}" in cells.hovertemplate
    assert cells.customdata[0][1] == frame["label"][0] and cells.customdata[0][4] == "30.0%"
    outlined = [t for t in figure.data if t.name == "hotspots"]
    assert len(outlined) == 1 and list(outlined[0].locations) == frame["h3_cell"][:10].tolist()  # 12 hotspots, top 10 drawn
    assert figure.layout.map.style == "white-bg" and not figure.layout.map.layers
    tiled = figures.map_figure(frame, "incidents", tiles_url="https://tiles.example.org/{z}/{x}/{y}.png")
    assert tiled.layout.map.layers[0].source == ("https://tiles.example.org/{z}/{x}/{y}.png",)
    with pytest.raises(ValueError, match="colour_by must be one of"):
        figures.map_figure(frame, "arrests")


def test_rank_digits_are_line_segments_around_the_point():
    lngs, lats = digit_lines("10", 41.88, -87.63, 0.01)
    assert lngs.count(None) == len("bc") + len("abcdef")  # one break after each segment
    points = [(x, y) for x, y in zip(lngs, lats) if x is not None]
    assert max(y for _, y in points) - min(y for _, y in points) == pytest.approx(0.01)
    assert min(x for x, _ in points) < -87.63 < max(x for x, _ in points)


def test_the_view_holds_every_cell():
    cells = sorted(h3.grid_disk(h3.latlng_to_cell(41.88, -87.63, 7), 4))
    (centre, zoom), width, height = fit_view(cells, 900, 620), 900, 620
    scale = TILE_PX * 2 ** zoom

    def pixel(lat, lng):  # web Mercator, relative to the centre
        y = lambda a: math.log(math.tan(math.pi / 4 + math.radians(a) / 2))  # noqa: E731
        return (lng - centre["lon"]) / 360 * scale, (y(lat) - y(centre["lat"])) / (2 * math.pi) * scale

    for cell in cells:
        for lat, lng in h3.cell_to_boundary(cell):
            x, y = pixel(lat, lng)
            assert abs(x) <= width / 2 and abs(y) <= height / 2


def test_places_are_named_by_what_people_call_them():
    names = dict(label="001XX N STATE ST, Loop, district 1", top_block="001XX N STATE ST", district=1, community_area_name="Loop")
    assert place_name(CellNames("86", 6, **names)) == "District 1 · Loop"
    assert place_name(CellNames("87", 7, **names)) == "Loop · District 1"
    assert place_name(CellNames("88", 8, **names)) == "around 001XX N STATE ST · Loop"
    assert place_name(CellNames("8a", 10, **names)) == "001XX N STATE ST · Loop"
    assert place_name(CellNames("8a2664c1a91ffff", 10)) == "cell 8a2664c1a91ffff"
    assert breadcrumbs([CellNames("86", 6, **names)]) == ["Citywide", "District 1 · Loop"]


def test_the_command_starts_streamlit_on_the_page_without_telemetry():
    args = streamlit_args(8600, "127.0.0.1", ["--theme.base", "light"])
    assert args[:3] == ["streamlit", "run", args[2]] and args[2].endswith("crime_assets/explorer/app.py")
    options = dict(zip(args[3::2], args[4::2]))
    assert options["--server.port"] == "8600" and options["--browser.gatherUsageStats"] == "false"
    assert options["--server.headless"] == "true" and options["--theme.base"] == "light"
