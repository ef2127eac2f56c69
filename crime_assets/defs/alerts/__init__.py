"""Alerts and freshness: a sensor that turns failed checks and runs into alerts (sensors.py), where
they go (resources.py, crime_assets/core/alerts.py), and the freshness checks with their sensor
(freshness.py)."""
