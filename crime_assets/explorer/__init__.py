"""The hotspot explorer: an analyst's console (a Streamlit app) over the H3 gold tables.

    python -m crime_assets.explorer          # http://localhost:8501

It reads only the gold tables (h3_monthly_stats, h3_hourly_counts, h3_cell_labels, hotspots) through the
public read path ``crime_assets.warehouse.connect(read_only=True)``. The queries are plain functions
(``queries``), the figures too (``figures``); ``app`` is the Streamlit page that wires them together.
"""
