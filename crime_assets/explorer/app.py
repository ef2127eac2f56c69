"""The hotspot explorer's Streamlit page: `python -m crime_assets.explorer` (or `streamlit run` this file).

Wiring only: the scope lives in the session state, every read goes through ``reader.read`` and the
functions of ``queries``, every chart comes from ``figures``.
"""

from __future__ import annotations

import time
from datetime import datetime

import h3
import pandas as pd
import streamlit as st

from crime_assets.hotspots.crime_categories import CATEGORY_NAMES
from crime_assets.hotspots.h3_stats import ConfidenceRule
from crime_assets.explorer import figures, queries
from crime_assets.explorer.places import breadcrumbs, place_name
from crime_assets.explorer.reader import WarehouseBusy, read
from crime_assets.explorer.scope import FINEST, Scope
from crime_assets.common.settings import Settings
from crime_assets.warehouse import WarehouseMissingError

ALL = "all"
RESOLUTION_HELP = "H3 resolution of the citywide map: r6 cells cover about 36 km², r8 0.7 km², r10 0.015 km² (a block)."
BUSY_RETRY_S = 2.0
STALE_VIEWS = 16  # views kept per session to show while the pipeline holds the lock

st.set_page_config(page_title="Hotspot explorer", layout="wide")
settings = Settings.from_env()
state = st.session_state


@st.cache_data(ttl=30, show_spinner=False)
def catalogue() -> tuple[str | None, list[str], pd.DataFrame]:
    """(what to materialise first, or None; the months held; the primary types with their categories)."""
    def load(con):
        missing = queries.missing_data(con)
        if missing:
            return missing, [], pd.DataFrame(columns=["primary_type", "category"])
        return None, queries.available_months(con), queries.primary_types(con)
    return read(load)


def stop_with(message: str, retry: bool = False) -> None:
    st.title("Hotspot explorer")
    st.warning(message)
    if retry:
        time.sleep(BUSY_RETRY_S)
        st.rerun()
    st.stop()


try:
    missing, months, types = catalogue()
except WarehouseMissingError as error:
    stop_with(f"{error}. The explorer reads the hotspot layer: materialise the `h3_monthly_stats` asset first "
              "(with what it depends on), e.g. `python -m crime_assets.quickstart`.")
except WarehouseBusy as error:
    stop_with(f"{error.args[0].capitalize()}; retrying in a moment.", retry=True)
if missing:
    stop_with(missing)


# ---- the scope, from the sidebar and the drill path --------------------------------------------------------

def reset_path() -> None:
    state.path = []


def reset_type() -> None:
    state.primary_type = ALL
    reset_path()


state.setdefault("path", [])
with st.sidebar:
    st.header("Scope")
    first, last = st.select_slider("Months", options=months, value=(months[-1], months[-1]), key="months")
    category = st.selectbox("Crime category", [ALL, *CATEGORY_NAMES], key="category", on_change=reset_type,
                            format_func=lambda c: c.replace("_", " "))
    choices = types if category == ALL else types[types["category"] == category]
    primary_type = st.selectbox("Primary type", [ALL, *choices["primary_type"]], key="primary_type",
                                format_func=lambda t: t if t == ALL else t.title())
    resolution = st.select_slider("Resolution", options=list(range(6, FINEST + 1)), value=8, key="resolution",
                                  format_func=lambda r: f"r{r}", on_change=reset_path, help=RESOLUTION_HELP)
    colour_by = st.radio("Colour cells by", list(figures.COLOUR_BY), format_func=figures.COLOUR_BY.get,
                         key="colour_by", horizontal=True)
    rule = ConfidenceRule()
    st.caption(f"Faded cells: low confidence (fewer than {rule.min_incidents} incidents or a 95% interval wider "
               f"than {rule.max_interval_width:.0%}). Reads the gold tables only, through the warehouse's "
               f"read-only connection ({settings.data_dir / 'warehouse.duckdb'}).")

scope = Scope(first, last, resolution, None if category == ALL else category,
              None if primary_type == ALL else primary_type, tuple(state.path))

try:
    view = read(queries.read_view, scope, months)
    stale = None
    state.setdefault("views", {})[scope] = (view, datetime.now())
    while len(state.views) > STALE_VIEWS:
        state.views.pop(next(iter(state.views)))
except WarehouseBusy as error:
    if scope not in state.get("views", {}):
        stop_with(f"{error.args[0].capitalize()}; this view will load once it is done. Retrying...", retry=True)
    view, read_at = state.views[scope]
    stale = f"{error.args[0].capitalize()}: showing what was read at {read_at:%H:%M:%S}."


# ---- the page ---------------------------------------------------------------------------------------------

def go_up(depth: int) -> None:
    state.path = state.path[:depth]


crumbs = breadcrumbs(view.path_names)
with st.container(horizontal=True, key="breadcrumbs", vertical_alignment="center"):
    for depth, name in enumerate(crumbs):
        st.button(name, key=f"crumb-{depth}", on_click=go_up, args=(depth,), disabled=depth == len(crumbs) - 1,
                  type="tertiary" if depth < len(crumbs) - 1 else "secondary")
        if depth < len(crumbs) - 1:
            st.markdown("›")

place_title = (view.path_names[-1].label or place_name(view.path_names[-1])) if view.path_names else "Citywide"
months_text = first if first == last else f"{first} to {last}"
st.subheader(f"{place_title} — {scope.describe_filter()}, {months_text}")
if stale:
    st.warning(stale)

k = view.kpis
totals = k.current
metrics = st.columns([1, 1, 1.3, 2.2], gap="medium")
with metrics[0]:
    before = k.previous_months[0] if k.previous_months[0] == k.previous_months[1] else \
        f"{k.previous_months[0]} to {k.previous_months[1]}"
    delta = None if k.change is None else (f"{k.change:+.1%} vs {before}" if len(scope.months) == 1 else
                                           f"{k.change:+.1%} vs the {len(scope.months)} months before")
    st.metric("Incidents", f"{totals.incidents:,}", delta=delta, delta_color="inverse",
              help=f"Change against {before}: {k.previous.incidents:,} incidents" if k.previous else
              f"The warehouse does not hold {before}, so there is no change to show")
with metrics[1]:
    st.metric("Arrests", f"{totals.arrests:,}")
with metrics[2]:
    rate = "n/a" if totals.arrest_rate is None else f"{totals.arrest_rate:.1%}"
    interval = "" if totals.arrest_rate is None else f"95% interval {totals.arrest_rate_lower:.1%} to {totals.arrest_rate_upper:.1%}"
    st.metric("Arrest rate", rate, help="Wilson 95% score interval")
    st.caption(interval)
with metrics[3]:
    st.markdown("Busiest cell")
    if k.busiest:
        st.markdown(f"**{k.busiest['label'] or k.busiest['h3_cell']}**")
        st.caption(f"{k.busiest['incidents']:,} incidents")
    else:
        st.markdown("none")

cells = view.cells
with st.container(key="explorer-map"):
    event = st.plotly_chart(
        figures.map_figure(cells, colour_by, scope.place, settings.explorer_tiles_url),
        on_select="rerun", selection_mode="points", key=f"map-{hash(scope)}", config={"scrollZoom": True})
notes = [f"{len(cells):,} cells at r{scope.view_resolution}"]
if scope.place is None or scope.place_resolution < FINEST:
    notes.append(f"click a cell to see its children at r{min(scope.view_resolution + 1, FINEST)}"
                 if scope.view_resolution < FINEST else "click a cell to select it")
if view.hotspot_resolution is None:
    notes.append(f"no hotspots tested for {last}")
elif view.hotspot_resolution == scope.view_resolution:
    notes.append(f"outlined and numbered: the top {figures.OUTLINED} hotspots of {last}")
else:
    notes.append(f"hotspots of {last} are tested at r{view.hotspot_resolution}")
st.caption(" · ".join(notes))

points = (event or {}).get("selection", {}).get("points", []) if event else []
if points:
    clicked = points[0].get("location") or (points[0].get("customdata") or [None])[0]
    if clicked in set(cells["h3_cell"]) and not (scope.place and scope.place_resolution == FINEST) and clicked != scope.place:
        state.path = [*state.path, clicked]
        st.rerun()

left, right = st.columns(2)
with left:
    st.plotly_chart(figures.daily_figure(view.daily), key="daily")
    st.plotly_chart(figures.weekday_figure(view.weekdays), key="weekdays")
with right:
    st.plotly_chart(figures.hour_figure(view.hourly), key="hours")
    st.plotly_chart(figures.arrest_share_figure(view.arrest_share), key="arrest-share")

st.subheader("Top cells")
top = cells.head(15)
st.dataframe(pd.DataFrame({
    "place": [label or f"cell {cell}" for label, cell in zip(top["label"], top["h3_cell"])],
    "incidents": top["incidents"], "arrests": top["arrests"], "arrest rate": top["arrest_rate"],
    "95% interval": [f"{lo:.1%} to {hi:.1%}" for lo, hi in zip(top["arrest_rate_lower"], top["arrest_rate_upper"])],
    "pooled rate": top["pooled_arrest_rate"], "low confidence": top["is_low_confidence"],
    "hotspot rank": ["" if pd.isna(r) else f"#{int(r)}" for r in top["hotspot_rank"]], "cell": top["h3_cell"],
    "resolution": [h3.get_resolution(c) for c in top["h3_cell"]],
}), hide_index=True, key="top-cells", column_config={
    "arrest rate": st.column_config.NumberColumn(format="percent"),
    "pooled rate": st.column_config.NumberColumn(format="percent")})
