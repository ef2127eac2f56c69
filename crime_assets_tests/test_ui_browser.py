"""The Dagster UI in a real browser (Debian's Chromium driven by Playwright), as a person uses it.

One webserver and one daemon serve a fresh instance (a copy of the repository's dagster.yaml in a
temporary DAGSTER_HOME, an empty data directory) for the whole module:

1. the lineage graph shows every asset of ``crime_assets.definitions:defs``, each inside its group;
2. a backfill of 2016-01...2016-03 for the ingestion assets, launched from the job's page the way a
   person does it, runs as ONE run (single-run backfill policy) and succeeds;
3. each month's materialisation, its metadata and the check results are visible on the asset pages.

Screenshots land in crime_assets_tests/artifacts/ (git-ignored; CRIME_TEST_ARTIFACTS overrides).
Without Chromium the tests skip saying so, or fail when CI is set.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from crime_assets.definitions import defs
from crime_assets_tests.helpers import REPO
from crime_assets_tests.servers import (
    CHROMIUM_FLAGS, chromium_path, dagster_env, dagster_services, fresh_dagster_home, require,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOCATION, JOB = "crime_assets", "monthly_assets_job"
ASSETS = ["police_stations", "raw_incidents", "incidents_enriched"]
MONTHS = ["2016-01", "2016-02", "2016-03"]
MONTH_RANGE = f"{MONTHS[0]}...{MONTHS[-1]}"
SAMPLE_ROWS = {"2016-01": 20_583, "2016-02": 18_680, "2016-03": 21_986}  # the shipped export, per month
ARTIFACTS = Path(os.environ.get("CRIME_TEST_ARTIFACTS", REPO / "crime_assets_tests" / "artifacts"))
BACKFILL_TIMEOUT_S = 180

asset_node = '[class*="AssetNode_assetName"]'
group_header = '[class*="ExpandedGroupNode_groupNodeHeaderBox"]'


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    require("chromium", path, "apt-get install chromium (Debian's package; .ci/run installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require("playwright", None, 'python -m pip install -c requirements.lock -e ".[test]"')
    return path


@pytest.fixture(scope="module")
def ui(tmp_path_factory, chromium):
    root = tmp_path_factory.mktemp("ui")
    home = fresh_dagster_home(root)
    with dagster_services(home, dagster_env(home, root / "data")) as services:
        yield services


@pytest.fixture(scope="module")
def page(ui, chromium, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
            executable_path=chromium, headless=True,  # Playwright adds --headless itself
            args=[flag for flag in CHROMIUM_FLAGS if flag != "--headless"],
            viewport={"width": 1600, "height": 1000},
        )
        context.set_default_timeout(30_000)
        page = context.pages[0] if context.pages else context.new_page()
        # A fresh profile gets Dagster's "Join the Dagster community" dialog one second after the
        # first page load, at a moment of its choosing (it closed an open menu in CI once). Mark it
        # as already skipped, the way the UI's own "Skip" button records it, before any page runs.
        context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'));")
        try:
            yield page
        finally:
            context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def expand_all_groups(page) -> None:
    """The graph's settings menu toggles between "Expand all groups" and "Collapse all groups"."""
    page.get_by_role("button", name="settings", exact=True).click()
    item = page.get_by_role("menuitem", name=re.compile("(Expand|Collapse) all groups"))
    item.wait_for()
    if "Expand" in item.inner_text():
        item.click()
    page.keyboard.press("Escape")  # the menu stays open after a click
    page.get_by_role("menuitem").first.wait_for(state="hidden")


def node(page, name: str):
    return page.locator(asset_node, has_text=re.compile(f"^{re.escape(name)}$"))


def expected_groups() -> dict[str, str]:
    graph = defs.resolve_asset_graph()
    return {" / ".join(key.path): graph.get(key).group_name for key in graph.get_all_asset_keys()}


def center(box: dict) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def inside(point: tuple[float, float], rect: dict) -> bool:
    return rect["x"] <= point[0] <= rect["x"] + rect["width"] and rect["y"] <= point[1] <= rect["y"] + rect["height"]


def within(box: dict, rect: dict) -> bool:
    return rect["x"] <= box["x"] and box["x"] + box["width"] <= rect["x"] + rect["width"] and \
        rect["y"] <= box["y"] and box["y"] + box["height"] <= rect["y"] + rect["height"]


def outside_graph_pane(page) -> list[str]:
    """Asset nodes and group headers not wholly visible in the graph's pane (below its toolbar)."""
    pane = page.evaluate("""() => { const r = document.querySelector('[class*="SVGViewport_zoomSliderContainer"]')
        .parentElement.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; }""")
    toolbar = page.get_by_role("button", name=re.compile("Materialize all")).bounding_box()
    top = toolbar["y"] + toolbar["height"] + 16  # the toolbar's own padding and border
    visible = {"x": pane["x"], "y": top, "width": pane["width"], "height": pane["y"] + pane["height"] - top}
    drawn = page.locator(asset_node).all() + page.locator(group_header).all()
    return [el.inner_text().split("\n")[0] for el in drawn if not within(el.bounding_box(), visible)]


def test_lineage_graph_shows_every_asset_in_its_group(ui, page):
    expected = expected_groups()
    page.goto(f"{ui.url}/asset-groups")
    page.get_by_role("button", name=re.compile("Materialize all")).wait_for()
    expand_all_groups(page)
    page.locator(asset_node).first.wait_for()
    # The graph opens at a readable zoom that may not hold everything (and draws only what is in view):
    # zoom out as a person would until every asset and every group is inside the pane.
    for _ in range(12):
        time.sleep(1)  # let the zoom animation settle
        if set(page.locator(asset_node).all_inner_texts()) == set(expected) and not outside_graph_pane(page):
            break
        page.get_by_role("button", name="zoom_out", exact=True).click()
    shown = page.locator(asset_node).all_inner_texts()
    assert sorted(shown) == sorted(expected), "the lineage graph does not show exactly the assets of defs"
    assert not outside_graph_pane(page), f"not inside the graph pane: {outside_graph_pane(page)}"
    page.mouse.move(0, 0)  # no hover highlight in the picture
    page.evaluate("document.activeElement && document.activeElement.blur()")

    # Each group is drawn as a box (the header's foreignObject spans it); every asset sits in its own.
    groups = {}
    for header in page.locator(group_header).all():
        name = header.inner_text().split("\n")[0].strip()
        groups[name] = header.evaluate(
            "e => { const r = e.closest('foreignObject').getBoundingClientRect();"
            " return {x: r.x, y: r.y, width: r.width, height: r.height}; }")
    assert set(groups) == set(expected.values())
    for name, group in expected.items():
        point = center(node(page, name).bounding_box())
        assert [g for g, rect in groups.items() if inside(point, rect)] == [group], f"{name} is not drawn in {group}"
    screenshot(page, "lineage_graph.png")


def backfills(ui) -> list[dict]:
    data = ui.graphql("""{ partitionBackfillsOrError(limit: 50) { __typename ... on PartitionBackfills { results {
        id status partitionSetName partitionNames timestamp
        runs(limit: 20) { runId status creationTime startTime endTime assetSelection { path } tags { key value } }
        } } } }""")
    return data["partitionBackfillsOrError"]["results"]


@pytest.fixture(scope="module")
def backfill(ui, page) -> dict:
    """2016-01...2016-03 of the ingestion assets, launched from monthly_assets_job's page: select the three
    assets in its graph, "Materialize selected", type the range, "Launch backfill". Waits until the
    backfill and its runs have finished."""
    page.goto(f"{ui.url}/locations/{LOCATION}/jobs/{JOB}")
    page.get_by_role("button", name=re.compile("Materialize all")).wait_for()
    expand_all_groups(page)
    node(page, ASSETS[0]).click()
    for name in ASSETS[1:]:
        node(page, name).click(modifiers=["Shift"])
    page.get_by_role("button", name=re.compile(f"Materialize selected \\({len(ASSETS)}\\)")).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_placeholder(re.compile("^ex: ")).fill(f"[{MONTH_RANGE}]")
    page.keyboard.press("Enter")
    dialog.get_by_text(f"{len(MONTHS)} partitions").wait_for()
    screenshot(page, "backfill_dialog.png")
    dialog.get_by_role("button", name="Launch backfill").click()
    dialog.wait_for(state="hidden")

    def finished():
        ours = [b for b in backfills(ui) if b["partitionSetName"] == f"{JOB}_partition_set"
                and b["partitionNames"] == MONTHS]
        if len(ours) != 1:
            return None
        b = ours[0]
        done = b["status"] not in ("REQUESTED", "CANCELING", "FAILING")
        runs_done = b["runs"] and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in b["runs"])
        return b if done and runs_done else None

    result = ui.wait_for("the backfill to finish", finished, timeout=BACKFILL_TIMEOUT_S, interval=2.0)
    for run in result["runs"]:
        since = {k: run[k] - result["timestamp"] for k in ("creationTime", "startTime", "endTime")}
        print(f"backfill {result['id']}: run {run['runId'][:8]} created +{since['creationTime']:.0f} s, "
              f"started +{since['startTime']:.0f} s, ended +{since['endTime']:.0f} s after the request")
    return result


def test_backfill_of_three_months_is_one_successful_run(ui, backfill):
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    assert len(backfill["runs"]) == 1, f"expected one run, got {len(backfill['runs'])}: {backfill['runs']}"
    run = backfill["runs"][0]
    assert run["status"] == "SUCCESS", ui.logs()
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == \
        (MONTHS[0], MONTHS[-1])
    assert tags["dagster/backfill"] == backfill["id"]
    assert sorted(a["path"][-1] for a in run["assetSelection"]) == sorted(ASSETS)


@pytest.mark.parametrize("asset", ["raw_incidents", "incidents_enriched"])
def test_each_month_shows_its_materialisation_metadata_and_checks(ui, page, backfill, asset):
    from playwright.sync_api import expect

    run_id = backfill["runs"][0]["runId"]
    for month in MONTHS:
        page.goto(f"{ui.url}/assets/{asset}?view=partitions&partition={month}")
        body = page.locator("body")
        expect(page.get_by_text("dagster/row_count", exact=True)).to_be_visible()
        expect(body).to_contain_text(re.compile(f"{month}\\s*Materialized"))  # the panel's title and status
        # The run that wrote it, the range it belongs to, and this month's own row count in the table.
        expect(body).to_contain_text(run_id[:8])
        expect(body).to_contain_text(MONTH_RANGE)
        expect(page.get_by_role("row", name=re.compile(f"^{month} {SAMPLE_ROWS[month]}\\b"))).to_be_visible()
        if month == MONTHS[1]:
            screenshot(page, f"{asset}_{month}_materialisation.png")

    # Every check the asset evaluates in its own step ran with this backfill and passed: the list shows
    # each check's latest execution.
    checks = sorted(spec.name for spec in defs.get_assets_def(asset).check_specs)
    assert checks, f"{asset} declares no checks"
    page.goto(f"{ui.url}/assets/{asset}?view=checks")
    expect(page.get_by_text(re.compile(r"^Checks \(\d+\)$")).first).to_be_visible()
    for name in checks:
        row = page.locator('[class*="AssetChecks_checkRow"]', has=page.get_by_text(name, exact=True))
        expect(row.first).to_contain_text("Succeeded")
    # Other checks (freshness, owned by the alerts) may be listed too; open one of the step's own.
    page.locator('[class*="AssetChecks_checkRow"]', has=page.get_by_text(checks[0], exact=True)).first.click()
    expect(page.get_by_text("Latest execution")).to_be_visible()
    expect(page.locator("body")).to_contain_text(f"months{MONTH_RANGE}")  # the result's metadata names its months
    screenshot(page, f"{asset}_checks.png")
