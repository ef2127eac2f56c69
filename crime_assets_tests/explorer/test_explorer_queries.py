"""The hotspot explorer's reads without a browser: every figure it shows against a DuckDB query of the incidents.

The warehouse is 2016-01...2016-06 of the shipped sample through the hotspot layer (fixture gold_2016_h1). The
expected values are counted from incidents_enriched, never from the gold tables the explorer reads.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import h3
import pytest

from crime_assets import warehouse
from crime_assets.hotspots.crime_categories import CATEGORIES
from crime_assets.explorer import queries
from crime_assets.explorer.reader import WarehouseBusy, read
from crime_assets.explorer.scope import Scope
from crime_assets.common.settings import Settings

MONTH = "2016-06"


@pytest.fixture
def con(gold_2016_h1):
    """A read-only connection for one test (held for the module, it would keep the lock test's writer out)."""
    with warehouse.connect(read_only=True, environ={"CRIME_DATA_DIR": str(gold_2016_h1.data_dir)}) as con:
        queries._ensure_hotspots_table(con)
        yield con


def category_sql(name: str) -> str:
    """The platform's grouping (crime_categories.CATEGORIES) as a condition on incidents_enriched."""
    types = ", ".join(f"'{t}'" for t in CATEGORIES[name])
    return f"upper(regexp_replace(trim(primary_type), '\\s+', ' ', 'g')) IN ({types})"


def truth(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or {}).fetchall()


def test_hourly_counts_hold_every_geolocated_incident_by_cell_day_hour_and_type(con):
    direct = dict(((r, c, d, h, t), (n, a)) for r, c, d, h, t, n, a in truth(con, """
        SELECT 8, h3_r8, occurred_at::DATE, hour(occurred_at), primary_type, count(*), count(*) FILTER (arrest)
        FROM incidents_enriched WHERE is_geolocated AND month = $m GROUP BY ALL""", {"m": MONTH}))
    stored = dict(((r, c, d, h, t), (n, a)) for r, c, d, h, t, n, a in truth(con, """
        SELECT resolution, h3_cell, day, hour, primary_type, incidents, arrests FROM h3_hourly_counts
        WHERE month = $m AND resolution = 8""", {"m": MONTH}))
    assert stored == direct
    categories = dict(truth(con, "SELECT DISTINCT primary_type, category FROM h3_hourly_counts WHERE primary_type IS NOT NULL"))
    assert categories["NARCOTICS"] == "drugs" and categories["THEFT"] == "property" and categories["BATTERY"] == "violent"


def test_citywide_map_of_a_month_is_h3_monthly_stats(con):
    cells = queries.map_cells(con, Scope(MONTH, MONTH, 8))
    stored = truth(con, """SELECT h3_cell, incidents, arrests, arrest_rate, arrest_rate_lower, arrest_rate_upper,
                                  is_low_confidence, pooled_arrest_rate
                           FROM h3_monthly_stats WHERE month = $m AND resolution = 8 ORDER BY h3_cell""", {"m": MONTH})
    shown = cells.sort_values("h3_cell")[["h3_cell", "incidents", "arrests", "arrest_rate", "arrest_rate_lower",
                                          "arrest_rate_upper", "is_low_confidence", "pooled_arrest_rate"]]
    assert len(shown) == len(stored)
    for got, want in zip(shown.itertuples(index=False), stored):
        assert got[:3] == want[:3] and bool(got.is_low_confidence) == want[6]
        assert got[3:6] == pytest.approx(want[3:6]) and got.pooled_arrest_rate == pytest.approx(want[7])
    assert cells["incidents"].is_monotonic_decreasing  # busiest first
    assert cells["label"].notna().all()
    hotspots = truth(con, "SELECT h3_cell, rank FROM hotspots WHERE month = $m AND resolution = 8", {"m": MONTH})
    assert hotspots, "the fixture's last month should have hotspots"
    ranked = cells.dropna(subset=["hotspot_rank"])
    assert sorted(zip(ranked["h3_cell"], ranked["hotspot_rank"].astype(int))) == sorted(hotspots)


def test_a_category_over_months_counts_and_pools_like_the_incidents(con):
    scope = Scope("2016-04", MONTH, 8, category="drugs")
    cells = queries.map_cells(con, scope).set_index("h3_cell")
    direct = {c: (n, a) for c, n, a in truth(con, f"""
        SELECT h3_r8, count(*), count(*) FILTER (arrest) FROM incidents_enriched
        WHERE is_geolocated AND month BETWEEN '2016-04' AND '2016-06' AND {category_sql('drugs')} GROUP BY ALL""")}
    assert {c: (int(r.incidents), int(r.arrests)) for c, r in cells.iterrows()} == direct
    # the pooled rate over the cell and its ring-1 neighbours, counted here from the direct counts
    for cell in list(direct)[:200]:
        disk = [direct.get(n, (0, 0)) for n in h3.grid_disk(cell, 1)]
        assert cells.loc[cell, "pooled_incidents"] == sum(n for n, _ in disk)
        assert cells.loc[cell, "pooled_arrest_rate"] == pytest.approx(sum(a for _, a in disk) / sum(n for n, _ in disk))


def test_drilling_from_r6_to_r10_children_sum_to_their_parent(con):
    scope = Scope(MONTH, MONTH, 6, primary_type="THEFT")
    parent_total = queries.place_totals(con, scope).incidents
    for _ in range(5):
        cells = queries.map_cells(con, scope)
        assert int(cells["incidents"].sum()) == parent_total
        busiest = cells.iloc[0]["h3_cell"]
        scope = scope.drill(busiest)
        parent_total = queries.place_totals(con, scope).incidents
        assert parent_total == int(cells.iloc[0]["incidents"])
    assert scope.place_resolution == 10 and scope.view_resolution == 10
    assert queries.map_cells(con, scope)["h3_cell"].tolist() == [scope.place]
    names = queries.path_names(con, scope)
    assert [n.resolution for n in names] == [6, 7, 8, 9, 10] and all(n.label for n in names)


def test_kpis_and_time_panels_of_a_place_agree_with_the_incidents(con):
    scope = Scope("2016-05", MONTH, 8, category="violent")
    city = queries.map_cells(con, scope)
    scope = scope.drill(city.iloc[0]["h3_cell"])
    place, where = scope.place, f"is_geolocated AND h3_r8 = '{scope.place}' AND {category_sql('violent')}"
    (n, a), = truth(con, f"SELECT count(*), count(*) FILTER (arrest) FROM incidents_enriched WHERE {where}"
                         " AND month BETWEEN '2016-05' AND '2016-06'")
    view = queries.read_view(con, scope)
    assert (view.kpis.current.incidents, view.kpis.current.arrests) == (n, a)
    lower, upper = con.execute("SELECT wilson_lower($a, $n, 1.959963984540054), wilson_upper($a, $n, 1.959963984540054)",
                               {"a": a, "n": n}).fetchall()[0]
    assert (view.kpis.current.arrest_rate_lower, view.kpis.current.arrest_rate_upper) == pytest.approx((lower, upper))
    (previous,), = truth(con, f"SELECT count(*) FROM incidents_enriched WHERE {where} AND month BETWEEN '2016-03' AND '2016-04'")
    assert view.kpis.previous.incidents == previous and view.kpis.previous_months == ("2016-03", "2016-04")
    assert view.kpis.change == pytest.approx(n / previous - 1)
    hours = dict(truth(con, f"SELECT hour(occurred_at), count(*) FROM incidents_enriched WHERE {where}"
                            " AND month BETWEEN '2016-05' AND '2016-06' GROUP BY 1"))
    assert view.hourly["hour"].tolist() == list(range(24))
    assert dict(zip(view.hourly["hour"], view.hourly["incidents"])) == {h: hours.get(h, 0) for h in range(24)}
    weekdays = dict(truth(con, f"SELECT isodow(occurred_at), count(*) FROM incidents_enriched WHERE {where}"
                               " AND month BETWEEN '2016-05' AND '2016-06' GROUP BY 1"))
    assert dict(zip(view.weekdays["weekday"], view.weekdays["incidents"])) == {d: weekdays.get(d, 0) for d in range(1, 8)}
    assert view.weekdays["name"].tolist()[0] == "Mon"
    days = dict(truth(con, f"SELECT occurred_at::DATE, count(*) FROM incidents_enriched WHERE {where}"
                           " AND month BETWEEN '2016-05' AND '2016-06' GROUP BY 1"))
    assert dict(zip(view.daily["day"].dt.date, view.daily["incidents"])) == days
    assert set(view.daily["category"]) == {"violent"}
    assert int(view.arrest_share["incidents"].sum()) == n  # per primary type once a category is chosen
    assert view.path_names[0].h3_cell == place


def test_citywide_totals_and_arrest_share_by_category(con):
    view = queries.read_view(con, Scope(MONTH, MONTH, 8))
    (n, a), = truth(con, "SELECT count(*), count(*) FILTER (arrest) FROM incidents_enriched WHERE is_geolocated AND month = $m",
                    {"m": MONTH})
    assert (view.kpis.current.incidents, view.kpis.current.arrests) == (n, a)
    assert view.kpis.busiest["incidents"] == int(view.cells["incidents"].max())
    share = view.arrest_share.set_index("group")
    (drugs, drug_arrests), = truth(con, f"SELECT count(*), count(*) FILTER (arrest) FROM incidents_enriched"
                                        f" WHERE is_geolocated AND month = $m AND {category_sql('drugs')}", {"m": MONTH})
    assert (share.loc["drugs", "incidents"], share.loc["drugs", "arrests"]) == (drugs, drug_arrests)
    assert int(share["incidents"].sum()) == n
    assert view.hotspot_resolution == 8


def test_the_first_month_has_no_previous_period(con):
    view = queries.read_view(con, Scope("2016-01", "2016-02", 8))
    assert view.kpis.previous is None and view.kpis.change is None and view.kpis.previous_months == ("2015-11", "2015-12")


def test_available_months_and_primary_types(con):
    assert queries.available_months(con) == [f"2016-0{m}" for m in range(1, 7)]
    types = queries.primary_types(con)
    assert "NARCOTICS" in set(types["primary_type"]) and set(types["category"]) <= set(CATEGORIES) | {"other"}


def test_an_empty_warehouse_names_the_asset_to_materialise_first(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert "materialise the `h3_monthly_stats` asset first" in queries.missing_data(con)
        con.execute("CREATE TABLE h3_monthly_stats AS SELECT 'x' AS month")
        assert "`h3_cell_labels`" in queries.missing_data(con)
        con.execute("CREATE TABLE h3_cell_labels AS SELECT 'x' AS month")
        message = queries.missing_data(con)
        assert "no h3_hourly_counts" in message and "`h3_daily_counts` asset first (it writes h3_hourly_counts)" in message
        con.execute("CREATE TABLE h3_hourly_counts AS SELECT 'x' AS month")
        assert queries.missing_data(con) is None


def test_a_scope_that_cannot_be_shown_is_refused_with_the_reason():
    cell = h3.latlng_to_cell(41.88, -87.63, 8)
    for kwargs, reason in [
        ({"first": "2016-13", "last": "2016-12"}, "not a month key"),
        ({"first": "2016-05", "last": "2016-04"}, "ends before it starts"),
        ({"first": "2016-05", "last": "2016-05", "resolution": 11}, "resolution must be one of"),
        ({"first": "2016-05", "last": "2016-05", "category": "theft"}, "unknown crime category 'theft'"),
        ({"first": "2016-05", "last": "2016-05", "category": "drugs", "primary_type": "THEFT"}, "not in the category"),
        ({"first": "2016-05", "last": "2016-05", "resolution": 7, "path": (cell,)}, "is at r8, expected r7"),
        ({"first": "2016-05", "last": "2016-05", "path": (cell, h3.latlng_to_cell(41.7, -87.6, 9))}, "is not a child of"),
        ({"first": "2016-05", "last": "2016-05", "path": ("nonsense",)}, "not an H3 cell"),
    ]:
        with pytest.raises(ValueError, match=reason):
            Scope(**kwargs)


def test_reads_wait_out_a_short_write_lock_and_then_report_the_busy_warehouse(gold_2016_h1, tmp_path):
    environ = {"CRIME_DATA_DIR": str(gold_2016_h1.data_dir)}

    def connect(read_only=True):
        return warehouse.connect(read_only=read_only, environ=environ)

    # A writer in another process, as a pipeline run is: it holds the lock until told to stop.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, duckdb
        con = duckdb.connect({str(gold_2016_h1.data_dir / 'warehouse.duckdb')!r})
        print("locked", flush=True)
        sys.stdin.readline()
        con.close()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseBusy, match="the pipeline is writing the warehouse"):
            read(queries.available_months, attempts=3, first_delay_s=0.05, connect=connect)
    finally:
        holder.communicate("\n", timeout=30)
    assert read(queries.available_months, connect=connect)[-1] == MONTH
    # and a read leaves no connection behind: a writer in another process gets the lock at once
    done = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(gold_2016_h1.data_dir / 'warehouse.duckdb')!r}).close()"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_explorer_url_settings_are_checked_and_link_the_hotspots_asset():
    import dagster as dg

    from crime_assets.definitions import build_defs

    assert Settings.from_env({}).explorer_url == "http://localhost:8501"
    assert Settings.from_env({}).explorer_tiles_url is None
    settings = Settings.from_env({"CRIME_EXPLORER_URL": "https://explorer.example.org/",
                                  "CRIME_EXPLORER_TILES_URL": "https://tiles.example.org/{z}/{x}/{y}.png"})
    assert settings.explorer_url == "https://explorer.example.org"
    assert settings.explorer_tiles_url == "https://tiles.example.org/{z}/{x}/{y}.png"
    with pytest.raises(ValueError, match="CRIME_EXPLORER_URL: must be an http:// or https:// URL"):
        Settings.from_env({"CRIME_EXPLORER_URL": "explorer:8501"})
    with pytest.raises(ValueError, match="CRIME_EXPLORER_TILES_URL: must contain \\{z\\}, \\{x\\} and \\{y\\}"):
        Settings.from_env({"CRIME_EXPLORER_TILES_URL": "https://tiles.example.org/tile.png"})
    defs = build_defs(settings)
    metadata = defs.get_assets_def("hotspots").specs_by_key[dg.AssetKey("hotspots")].metadata
    assert metadata["hotspot_explorer"] == dg.MetadataValue.url("https://explorer.example.org")
    assert "hotspot_explorer" not in defs.get_assets_def("h3_monthly_stats").specs_by_key[dg.AssetKey("h3_monthly_stats")].metadata
