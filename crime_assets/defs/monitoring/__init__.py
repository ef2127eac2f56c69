"""Monitoring: the monthly drift report with its retrain sensor (drift_assets.py, drift_sensors.py, drift.py),
alerts on failed checks and runs (alert_sensors.py, alert_resources.py, alerts.py), and the freshness checks
(freshness.py)."""
