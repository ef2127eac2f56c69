"""The hotspot explorer in a real browser (Debian's Chromium driven by Playwright), as an analyst uses it.

`python -m crime_assets.explorer` serves the warehouse of fixture gold_2016_h1 (2016-01...2016-06 of the
shipped sample through the hotspot layer); every figure checked is counted here with DuckDB from
incidents_enriched or h3_monthly_stats. The map is read from the page's own Plotly graph (its cells and
values), and clicked where the map draws a cell. Screenshots land in crime_assets_tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import h3
import pytest
import requests

from crime_assets.defs.resources import build_warehouse
from crime_assets_tests.helpers import REPO, query, settings_for
from crime_assets_tests.servers import CHROMIUM_FLAGS, chromium_path, free_port, require, start_service
from crime_assets_tests.explorer.test_explorer_queries import category_sql

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(os.environ.get("CRIME_TEST_ARTIFACTS", REPO / "crime_assets_tests" / "artifacts"))
LAST = "2016-06"
# The page's map: its Plotly graph, its first trace (every cell) and its MapLibre map.
MAP = "document.querySelector('.st-key-explorer-map .js-plotly-plot')"
MAP_READY = f"""() => {{ const g = {MAP};
    return !!(g && g.data && g._fullLayout && g._fullLayout.map && g._fullLayout.map._subplot.map.loaded()); }}"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    require("chromium", path, "apt-get install chromium (Debian's package; .ci/run installs it)")
    for module, how in (("playwright.sync_api", 'python -m pip install -c requirements.lock -e ".[test]"'),
                        ("streamlit", 'python -m pip install -c requirements.lock -e ".[explorer]"')):
        try:
            __import__(module)
        except ImportError:
            require(module, None, how)
    return path


def start_explorer(data_dir: Path, log_dir: Path):
    """`python -m crime_assets.explorer` on a free port; returns (service, url) once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIME_")} | {
        "CRIME_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    service = start_service(f"explorer-{port}", [sys.executable, "-m", "crime_assets.explorer", "--port", str(port)],
                            REPO, env, log_dir)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while True:
        service.assert_running()
        try:
            if requests.get(f"{url}/_stcore/health", timeout=2).ok:
                return service, url
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the explorer did not answer within 60 s:\n{service.log_tail()}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def explorer(gold_2016_h1, chromium, tmp_path_factory):
    service, url = start_explorer(gold_2016_h1.data_dir, tmp_path_factory.mktemp("explorer-logs"))
    try:
        yield url
    finally:
        service.stop()


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # WebGL draws the map: Chromium's software renderer stands in for a GPU (no --disable-gpu).
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=[f for f in CHROMIUM_FLAGS if f not in ("--headless", "--disable-gpu")])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, explorer):
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(explorer)  # a new page is a new session: the default scope
    try:
        yield page
    finally:
        context.close()


def screenshot(page, name: str, height: int = 2300) -> Path:
    """The whole page (Streamlit scrolls inside its own container, so the viewport is made tall enough)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_function(MAP_READY)
    page.wait_for_timeout(1000)  # let the resized map redraw
    page.mouse.move(0, 0)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    print(f"screenshot: {path}")
    return path


def wait_for_map(page, cells: list[str]) -> dict:
    """Wait until the map draws exactly ``cells`` (any order); returns {cell: value shown}."""
    page.wait_for_function(f"""expected => {{ const g = {MAP};
        if (!g || !g.data || !g._fullLayout || !g._fullLayout.map || !g._fullLayout.map._subplot.map.loaded()) return false;
        const shown = g.data[0].locations; return shown.length === expected.length &&
            [...shown].sort().every((c, i) => c === expected[i]); }}""", arg=sorted(cells))
    return page.evaluate(f"() => {{ const t = {MAP}.data[0]; return Object.fromEntries(t.locations.map((c, i) => [c, t.z[i]])); }}")


def click_cell(page, cell: str) -> None:
    """Click where the map draws the centre of ``cell``."""
    lat, lng = h3.cell_to_latlng(cell)
    x, y = page.evaluate(f"""([lng, lat]) => {{ const m = {MAP}._fullLayout.map._subplot.map;
        const p = m.project([lng, lat]); const r = m.getCanvas().getBoundingClientRect(); return [r.x + p.x, r.y + p.y]; }}""",
                         [lng, lat])
    page.mouse.click(x, y)


def metric(page, label: str) -> str:
    box = page.locator("[data-testid=stMetric]", has=page.get_by_text(label, exact=True))
    return box.locator("[data-testid=stMetricValue]").inner_text()


def month_cells(settings, month: str, resolution: int) -> dict[str, int]:
    return dict(query(settings, "SELECT h3_cell, incidents FROM h3_monthly_stats WHERE month = $m AND resolution = $r",
                      {"m": month, "r": resolution}))


def test_the_explorer_opens_on_the_last_month_citywide(page, gold_2016_h1):
    expected = month_cells(gold_2016_h1, LAST, 8)
    shown = wait_for_map(page, list(expected))
    assert shown == expected
    (incidents, arrests), = query(gold_2016_h1, "SELECT count(*), count(*) FILTER (arrest) FROM incidents_enriched"
                                                " WHERE is_geolocated AND month = $m", {"m": LAST})
    assert metric(page, "Incidents") == f"{incidents:,}"
    assert metric(page, "Arrests") == f"{arrests:,}"
    assert metric(page, "Arrest rate") == f"{arrests / incidents:.1%}"
    body = page.locator("body")
    assert f"Citywide — all incidents, {LAST}" in body.inner_text()
    assert f"{len(expected):,} cells at r8" in body.inner_text()
    hotspots = query(gold_2016_h1, "SELECT count(*) FROM hotspots WHERE month = $m", {"m": LAST})[0][0]
    outlined = page.evaluate(f"() => {MAP}.data.filter(t => t.name === 'hotspots').map(t => t.locations.length)")
    assert outlined == [min(hotspots, 10)]
    screenshot(page, "explorer_citywide.png")


def test_a_click_drills_into_children_that_sum_to_the_parent_and_a_breadcrumb_returns(page, gold_2016_h1):
    city = month_cells(gold_2016_h1, LAST, 8)
    wait_for_map(page, list(city))
    busiest = max(city, key=city.get)
    click_cell(page, busiest)
    children = month_cells(gold_2016_h1, LAST, 9)
    expected = {c: n for c, n in children.items() if h3.cell_to_parent(c, 8) == busiest}
    shown = wait_for_map(page, list(expected))
    assert shown == expected and sum(shown.values()) == city[busiest]
    assert metric(page, "Incidents") == f"{city[busiest]:,}"
    (label, block, area), = query(gold_2016_h1, "SELECT label, top_block, community_area_name FROM h3_cell_labels"
                                                " WHERE month = $m AND h3_cell = $c", {"m": LAST, "c": busiest})
    crumbs = page.locator(".st-key-breadcrumbs button").all_inner_texts()
    assert crumbs == ["Citywide", f"around {block} · {area}"]
    assert f"{label} — all incidents, {LAST}" in page.locator("body").inner_text()
    screenshot(page, "explorer_drilled.png")

    # one level further, then back up to the city with the first breadcrumb
    child = max(expected, key=expected.get)
    click_cell(page, child)
    grandchildren = {c: n for c, n in month_cells(gold_2016_h1, LAST, 10).items() if h3.cell_to_parent(c, 9) == child}
    assert sum(wait_for_map(page, list(grandchildren)).values()) == expected[child]
    assert len(page.locator(".st-key-breadcrumbs button").all()) == 3
    page.locator(".st-key-breadcrumbs button", has_text="Citywide").click()
    assert wait_for_map(page, list(city)) == city
    assert page.locator(".st-key-breadcrumbs button").all_inner_texts() == ["Citywide"]


def test_filters_change_the_kpis_to_what_duckdb_counts(page, gold_2016_h1):
    wait_for_map(page, list(month_cells(gold_2016_h1, LAST, 8)))
    # two months, the drugs category, resolution r9
    page.locator("[data-testid=stSlider]", has_text="Months").get_by_role("slider").first.press("ArrowLeft")
    page.locator("[data-testid=stSelectbox]", has_text="Crime category").click()
    page.get_by_role("option", name="drugs", exact=True).click()
    page.locator("[data-testid=stSlider]", has_text="Resolution").get_by_role("slider").press("ArrowRight")
    where = f"is_geolocated AND month BETWEEN '2016-05' AND '{LAST}' AND {category_sql('drugs')}"
    cells = dict(query(gold_2016_h1, f"SELECT h3_r9, count(*) FROM incidents_enriched WHERE {where} GROUP BY 1"))
    assert wait_for_map(page, list(cells)) == cells
    (incidents, arrests), = query(gold_2016_h1, f"SELECT count(*), count(*) FILTER (arrest) FROM incidents_enriched WHERE {where}")
    assert metric(page, "Incidents") == f"{incidents:,}"
    assert metric(page, "Arrests") == f"{arrests:,}"
    assert f"Citywide — drugs crime, 2016-05 to {LAST}" in page.locator("body").inner_text()
    # a primary type of the category narrows it further
    page.locator("[data-testid=stSelectbox]", has_text="Primary type").click()
    page.get_by_role("option", name="Narcotics", exact=True).click()
    narcotics = dict(query(gold_2016_h1, f"SELECT h3_r9, count(*) FROM incidents_enriched WHERE {where}"
                                         " AND primary_type = 'NARCOTICS' GROUP BY 1"))
    assert wait_for_map(page, list(narcotics)) == narcotics
    assert metric(page, "Incidents") == f"{sum(narcotics.values()):,}"
    screenshot(page, "explorer_filtered.png")


def test_while_a_run_holds_the_warehouse_the_explorer_says_so_and_recovers(page, gold_2016_h1):
    city = month_cells(gold_2016_h1, LAST, 8)
    wait_for_map(page, list(city))
    warehouse = build_warehouse(gold_2016_h1)
    with warehouse.connect():  # the pipeline's own write connection, as a running step holds it
        page.locator("[data-testid=stSlider]", has_text="Months").get_by_role("slider").first.press("ArrowLeft")
        page.get_by_text(re.compile("The pipeline is writing the warehouse right now")).first.wait_for()
    two_months = dict(query(gold_2016_h1, "SELECT h3_cell, sum(incidents)::BIGINT FROM h3_monthly_stats"
                                          " WHERE month BETWEEN '2016-05' AND $m AND resolution = 8 GROUP BY 1", {"m": LAST}))
    assert wait_for_map(page, list(two_months)) == two_months  # retried by itself once the lock was released
    assert metric(page, "Incidents") == f"{sum(two_months.values()):,}"


def test_with_no_gold_tables_it_names_the_asset_to_materialise(browser, tmp_path):
    settings = settings_for(tmp_path / "empty")
    settings.data_dir.mkdir(parents=True)
    import duckdb

    duckdb.connect(str(settings.data_dir / "warehouse.duckdb")).close()  # a warehouse without the hotspot layer
    service, url = start_explorer(settings.data_dir, tmp_path)
    try:
        page = browser.new_page()
        page.goto(url)
        page.get_by_text(re.compile("materialise the `?h3_monthly_stats`? asset first")).first.wait_for()
        page.close()
    finally:
        service.stop()
