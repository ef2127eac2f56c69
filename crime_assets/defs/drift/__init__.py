"""Drift monitoring of the arrest model: the monthly Evidently report, its gates, and the retrain sensor."""
