"""Benchmark: the hotspot explorer in headless Chromium on the 24 shipped months.

    python bench/bench_explorer.py [--reps 5] [--data-dir DIR]

Without --data-dir, 2015-01...2016-12 of the shipped sample go through the hotspot layer into a fresh data
dir first (one ranged run). Then `python -m crime_assets.explorer` serves it and Chromium (Debian's, through
Playwright) measures, after one warm-up page (the server's imports, the browser's cache):

- first render: a new page until the map has drawn its cells (MapLibre's `loaded`) with the KPIs shown,
  for the default scope (the last month, r8) and for all 24 months at r8;
- drill-down: a click on the busiest cell until the map has drawn its children.

Baselines in the same run: the explorer's reads alone (queries.read_view, no browser), an empty Streamlit
page holding one metric (what Streamlit alone costs), and a bare Streamlit page holding only a Plotly map of
the same cells (what Streamlit and Plotly cost before any of the explorer's own work). Medians of --reps
repetitions; the target (issue 21) is under 2 s each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GOLD = ["police_stations", "raw_incidents", "incidents_enriched", "h3_monthly_stats", "h3_daily_counts",
        "h3_cell_labels", "hotspots"]
FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
MAP = "document.querySelector('.js-plotly-plot')"  # the map is the page's first Plotly graph
MAP_READY = f"""() => {{ const g = {MAP};
    return !!(g && g.data && g._fullLayout && g._fullLayout.map && g._fullLayout.map._subplot.map.loaded()); }}"""
BASELINE_APP = '''
import sys
import plotly.graph_objects as go
import streamlit as st
from crime_assets import warehouse
from crime_assets.explorer.geometry import feature_collection
with warehouse.connect(read_only=True) as con:
    cells = con.execute("SELECT h3_cell, incidents FROM h3_monthly_stats WHERE month = '2016-12' AND resolution = 8").df()
ids = cells["h3_cell"].tolist()
figure = go.Figure(go.Choroplethmap(geojson=feature_collection(ids), locations=ids, z=cells["incidents"]))
figure.update_layout(map={"style": "white-bg", "center": {"lat": 41.84, "lon": -87.68}, "zoom": 9.3}, height=620)
st.plotly_chart(figure, on_select="rerun", selection_mode="points")
'''
EMPTY_APP = 'import streamlit as st\nst.metric("Incidents", 0)\n'


def build(data_dir: Path) -> float:
    from crime_assets.runs import materialize_months
    from crime_assets.common.settings import Settings

    started = time.perf_counter()
    materialize_months(GOLD, "2015-01", "2016-12", Settings.from_env({"CRIME_DATA_DIR": str(data_dir)}))
    return time.perf_counter() - started


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(args: list[str], data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "CRIME_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        process = subprocess.Popen(["env", "--default-signal=INT,TERM", sys.executable, *args, "--server.port", str(port)]
                                   if args[0] == "-m" and args[1] == "streamlit" else
                                   ["env", "--default-signal=INT,TERM", sys.executable, *args, "--port", str(port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/_stcore/health", timeout=2).ok:
                return process, url
        except requests.RequestException:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")


def first_render(context, url: str, kpis: bool = True, map_: bool = True) -> tuple[float, object]:
    """Seconds from navigating a new page to the map drawn (and the KPIs shown); the page."""
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url)
    if map_:
        page.wait_for_function(MAP_READY, timeout=120_000)
    if kpis:
        page.locator("[data-testid=stMetric]").first.wait_for()
    return time.perf_counter() - started, page


def rerender(page, action) -> float:
    """Seconds from ``action(page)`` to a new map drawn: the old graph is marked first, so only its
    replacement counts."""
    page.evaluate(f"() => {{ {MAP}.__replaced = true; }}")
    started = time.perf_counter()
    action(page)
    page.wait_for_function(f"""() => {{ const g = {MAP};
        return !!(g && !g.__replaced && g.data && g._fullLayout && g._fullLayout.map && g._fullLayout.map._subplot.map.loaded()); }}""",
                           timeout=120_000)
    return time.perf_counter() - started


def click_busiest_cell(page) -> None:
    import h3

    cell = page.evaluate(f"() => {{ const t = {MAP}.data[0]; let b = 0; t.z.forEach((z, i) => {{ if (z > t.z[b]) b = i; }});"
                         " return t.locations[b]; }")
    lat, lng = h3.cell_to_latlng(cell)
    x, y = page.evaluate(f"""([lng, lat]) => {{ const m = {MAP}._fullLayout.map._subplot.map;
        const p = m.project([lng, lat]); const r = m.getCanvas().getBoundingClientRect(); return [r.x + p.x, r.y + p.y]; }}""",
                         [lng, lat])
    page.mouse.click(x, y)


def all_months(page) -> None:
    """Widen the month range to every month (the first thumb of the months slider to its start)."""
    page.locator("[data-testid=stSlider]", has_text="Months").get_by_role("slider").first.press("Home")


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, help="an existing data dir holding 2015-01...2016-12 (default: build one)")
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    from playwright.sync_api import sync_playwright

    from crime_assets.explorer import queries
    from crime_assets.explorer.reader import read
    from crime_assets.explorer.scope import Scope

    work = Path(tempfile.mkdtemp(prefix="bench-explorer-"))
    data_dir = args.data_dir or work / "data"
    if not args.data_dir:
        print(f"building 2015-01...2016-12 through the hotspot layer into {data_dir}: {build(data_dir):.1f} s")
    os.environ["CRIME_DATA_DIR"] = str(data_dir)
    months = read(queries.available_months)
    print(f"warehouse: {data_dir} ({len(months)} months, {months[0]}...{months[-1]}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    reads = {"last month, r8": Scope(months[-1], months[-1], 8), "24 months, r8": Scope(months[0], months[-1], 8),
             "24 months, r10": Scope(months[0], months[-1], 10),
             "24 months, r8, drugs": Scope(months[0], months[-1], 8, category="drugs")}
    for name, scope in reads.items():
        times = []
        for _ in range(args.reps):
            started = time.perf_counter()
            read(queries.read_view, scope, months)
            times.append(time.perf_counter() - started)
        print(f"baseline, reads alone (read_view), {name}: {median(times)}")

    servers = [serve(["-m", "crime_assets.explorer"], data_dir, work / "explorer.log")]
    for name, source in (("baseline_app.py", BASELINE_APP), ("empty_app.py", EMPTY_APP)):
        (work / name).write_text(source)
        servers.append(serve(["-m", "streamlit", "run", str(work / name), "--server.headless", "true",
                              "--browser.gatherUsageStats", "false"], data_dir, work / f"{name}.log"))
    (url, baseline_url, empty_url) = [url for _, url in servers]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=FLAGS)
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            for target, kpis, map_ in ((url, True, True), (baseline_url, False, True), (empty_url, True, False)):
                first_render(context, target, kpis, map_)[1].close()  # warm-up: server imports, browser cache
            results: dict[str, list[float]] = {k: [] for k in (
                "baseline: bare Streamlit page with the same Plotly map (2016-12, r8)",
                "baseline: empty Streamlit page, one metric",
                "first render, last month r8", "drill-down, last month r8 -> r9",
                "re-render after widening to 24 months, r8", "drill-down, 24 months r8 -> r9")}
            keys = list(results)
            for _ in range(args.reps):
                seconds, page = first_render(context, baseline_url, kpis=False)
                results[keys[0]].append(seconds)
                page.close()
                seconds, page = first_render(context, empty_url, map_=False)
                results[keys[1]].append(seconds)
                page.close()
                seconds, page = first_render(context, url)
                results[keys[2]].append(seconds)
                results[keys[3]].append(rerender(page, click_busiest_cell))
                page.close()
                page = first_render(context, url)[1]
                results[keys[4]].append(rerender(page, all_months))
                results[keys[5]].append(rerender(page, click_busiest_cell))
                page.close()
            browser.close()
        for name, values in results.items():
            print(f"{name}: {median(values)}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        for process, _ in servers:
            os.killpg(process.pid, 15)
            process.wait(20)


if __name__ == "__main__":
    main()
