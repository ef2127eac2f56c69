"""Plotly figures of the explorer, as plain functions of the query results (no Streamlit here)."""

from __future__ import annotations

import h3
import pandas as pd
import plotly.graph_objects as go

from crime_assets.hotspots.crime_categories import CATEGORY_NAMES
from crime_assets.explorer.geometry import cell_height_deg, cell_ring, digit_lines, feature_collection, fit_view

COLOUR_BY = {"incidents": "Incidents", "pooled_arrest_rate": "Pooled arrest rate"}
CATEGORY_COLOURS = dict(zip(CATEGORY_NAMES, ("#d62728", "#1f77b4", "#9467bd", "#2c2c2c", "#ff7f0e", "#9e9e9e")))
LOW_CONFIDENCE_OPACITY = 0.45
MAP_HEIGHT = 620
MAP_WIDTH = 900  # what the view is fitted to; the chart stretches to its column
OUTLINED = 10  # hotspots outlined and numbered


def _percent(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.1%}"


def _hover_rows(cells: pd.DataFrame) -> list[list]:
    rows = []
    for c in cells.itertuples(index=False):
        notes = []
        if c.is_low_confidence:
            notes.append("low confidence (few incidents or a wide interval)")
        if not pd.isna(c.hotspot_rank):
            notes.append(f"hotspot #{int(c.hotspot_rank)}")
        rows.append([c.h3_cell, c.label or f"cell {c.h3_cell}", int(c.incidents), int(c.arrests), _percent(c.arrest_rate),
                     _percent(c.arrest_rate_lower), _percent(c.arrest_rate_upper), _percent(c.pooled_arrest_rate),
                     "<br>".join(notes)])
    return rows


HOVER = ("<b>%{customdata[1]}</b><br>%{customdata[2]} incidents, %{customdata[3]} arrests<br>"
         "arrest rate %{customdata[4]} (95% interval %{customdata[5]} to %{customdata[6]})<br>"
         "pooled with neighbours %{customdata[7]}<br>%{customdata[8]}<extra></extra>")


def _lat_extent(cells) -> float:
    lats = [p[1] for cell in cells for p in cell_ring(cell)]
    return max(lats) - min(lats) if lats else 0.0


def map_figure(cells: pd.DataFrame, colour_by: str = "incidents", place: str | None = None,
               tiles_url: str | None = None) -> go.Figure:
    """The cells coloured by incidents or pooled arrest rate; low-confidence cells faded; the first hotspots
    outlined and numbered by rank; the drilled place's outline. Trace 0 holds every cell (customdata[0]: its id)."""
    if colour_by not in COLOUR_BY:
        raise ValueError(f"colour_by must be one of {sorted(COLOUR_BY)}, got {colour_by!r}")
    ids = cells["h3_cell"].tolist()
    z = cells[colour_by].astype(float)
    rate = colour_by != "incidents"
    zmax = 1.0 if rate else max(float(z.quantile(0.98)) if len(z) else 1.0, 1.0)
    figure = go.Figure(go.Choroplethmap(
        geojson=feature_collection(ids), locations=ids, z=z, zmin=0, zmax=zmax,
        colorscale="Blues" if rate else "YlOrRd", customdata=_hover_rows(cells), hovertemplate=HOVER,
        marker={"opacity": [LOW_CONFIDENCE_OPACITY if low else 0.85 for low in cells["is_low_confidence"]],
                "line": {"width": 0.6, "color": "#555555"}},
        colorbar={"title": {"text": COLOUR_BY[colour_by]}, "tickformat": ".0%" if rate else ",d"},
        name="cells",
    ))
    hot = cells[cells["hotspot_rank"].notna()].sort_values("hotspot_rank").head(OUTLINED)
    if len(hot):
        hot_ids = hot["h3_cell"].tolist()
        figure.add_trace(go.Choroplethmap(
            geojson=feature_collection(hot_ids), locations=hot_ids, z=[1] * len(hot_ids), showscale=False,
            colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]], marker={"line": {"width": 3, "color": "#000000"}},
            customdata=_hover_rows(hot), hovertemplate=HOVER, name="hotspots"))
        # Numbers beside the cells, readable at the view's zoom: a white stroke under a black one.
        extent = max(_lat_extent(ids), cell_height_deg(hot_ids[0]))
        lngs, lats = [], []
        for cell, rank in zip(hot_ids, hot["hotspot_rank"].astype(int)):
            lat, lng = h3.cell_to_latlng(cell)
            height = max(extent / 45, 0.6 * cell_height_deg(cell))
            x, y = digit_lines(str(rank), lat + 0.5 * cell_height_deg(cell) + 0.6 * height, lng, height)
            lngs += x
            lats += y
        for width, colour in ((5, "#ffffff"), (2, "#000000")):
            figure.add_trace(go.Scattermap(lon=lngs, lat=lats, mode="lines", line={"width": width, "color": colour},
                                           hoverinfo="skip", name="hotspot ranks", showlegend=False))
    if place is not None:
        ring = cell_ring(place)
        figure.add_trace(go.Scattermap(lon=[p[0] for p in ring], lat=[p[1] for p in ring], mode="lines",
                                       line={"width": 2, "color": "#1f3b73"}, hoverinfo="skip", name="place",
                                       showlegend=False))
    centre, zoom = fit_view(ids or ([place] if place else []), MAP_WIDTH, MAP_HEIGHT)
    layers = [{"sourcetype": "raster", "source": [tiles_url], "below": "traces", "opacity": 0.6}] if tiles_url else []
    figure.update_layout(map={"style": "white-bg", "center": centre, "zoom": zoom, "layers": layers},
                         height=MAP_HEIGHT, margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False)
    return figure


def daily_figure(daily: pd.DataFrame) -> go.Figure:
    """Incidents per day, stacked by crime category (one filled band per category; a day without incidents
    of a category counts zero)."""
    figure = go.Figure()
    wide = daily.pivot_table(index="day", columns="category", values="incidents", aggfunc="sum", fill_value=0)
    for category in CATEGORY_NAMES:
        if category in wide:
            figure.add_trace(go.Scatter(x=wide.index, y=wide[category], name=category.replace("_", " "),
                                        stackgroup="categories", mode="lines", line={"width": 0.5},
                                        fillcolor=CATEGORY_COLOURS[category], line_color=CATEGORY_COLOURS[category]))
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, hovermode="x unified",
                         title={"text": "Incidents by day"}, legend={"orientation": "h", "y": -0.2})
    return figure


def hour_figure(hourly: pd.DataFrame) -> go.Figure:
    figure = go.Figure(go.Bar(x=hourly["hour"], y=hourly["incidents"], marker_color="#c0392b"))
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title={"text": "By hour of day"},
                         xaxis={"dtick": 3, "title": "hour"})
    return figure


def weekday_figure(weekdays: pd.DataFrame) -> go.Figure:
    figure = go.Figure(go.Bar(x=weekdays["name"], y=weekdays["incidents"], marker_color="#8e44ad"))
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title={"text": "By day of week"})
    return figure


def arrest_share_figure(share: pd.DataFrame) -> go.Figure:
    """Arrest rate per group with its Wilson 95% interval as error bars."""
    figure = go.Figure(go.Bar(
        y=share["group"].str.replace("_", " "), x=share["arrest_rate"], orientation="h", marker_color="#2c7fb8",
        error_x={"type": "data", "symmetric": False, "array": share["arrest_rate_upper"] - share["arrest_rate"],
                 "arrayminus": share["arrest_rate"] - share["arrest_rate_lower"]},
        customdata=share[["incidents", "arrests"]].to_numpy(),
        hovertemplate="%{y}: %{x:.1%} of %{customdata[0]} incidents<extra></extra>"))
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title={"text": "Arrest share"},
                         xaxis={"tickformat": ".0%", "range": [0, 1]}, yaxis={"autorange": "reversed"})
    return figure
