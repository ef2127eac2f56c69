"""The crime_assets code location: one Definitions object for the CLI, `dagster dev` and the daemon."""

import dagster as dg

from crime_assets.defs.alerts.freshness import build_freshness_checks, build_freshness_sensor
from crime_assets.defs.alerts.sensors import build_alert_sensor
from crime_assets.defs.automation.conditions import automation_policy, build_automation_sensor
from crime_assets.defs.automation.schedules import build_monthly_schedule
from crime_assets.defs.automation.sensors import build_new_data_sensor
from crime_assets.defs.drift import assets as drift_assets
from crime_assets.defs.drift.sensors import build_retrain_sensor
from crime_assets.defs.enrichment import assets as enrichment_assets
from crime_assets.defs.hotspots import assets as hotspots_assets
from crime_assets.defs.ingestion import assets as ingestion_assets
from crime_assets.defs.jobs import monthly_assets_job
from crime_assets.defs.model import assets as model_assets
from crime_assets.defs.resources import build_resources
from crime_assets.settings import Settings

# One module per domain holding its assets and asset checks.
ASSET_MODULES = [
    ingestion_assets,
    enrichment_assets,
    hotspots_assets,
    model_assets,
    drift_assets,
]


def build_defs(settings: Settings, resources: dict | None = None) -> dg.Definitions:
    """The definitions for these settings; ``resources`` replaces single resources (tests, notebooks)."""
    assets = dg.load_assets_from_modules(ASSET_MODULES)
    # Declarative automation is applied here, not in the asset modules: every monthly asset downstream
    # of raw_incidents follows a changed month (crime_assets/defs/automation/conditions.py); drift_report
    # once a champion of the configured registered model exists.
    assets = dg.map_asset_specs(automation_policy(assets, settings.arrest_model_name), assets)
    freshness_checks = build_freshness_checks(settings.alerts.freshness_days)
    job = monthly_assets_job(assets, excluded_checks=freshness_checks)
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_monthly_schedule(job, settings.automation)],
        sensors=[
            build_new_data_sensor(settings.automation),
            build_automation_sensor(assets, settings.automation),
            # Failed checks and runs -> webhook, e-mail, alert log (crime_assets/defs/alerts).
            build_alert_sensor(settings.alerts.interval_s),
            build_freshness_sensor(freshness_checks),
            # drift_report past a threshold -> retrain arrest_model, through its promotion gate (defs/drift).
            build_retrain_sensor(),
        ],
        asset_checks=[*dg.load_asset_checks_from_modules(ASSET_MODULES), *freshness_checks],
        resources=build_resources(settings) | (resources or {}),
        # Steps of one run share a process: a subprocess per step costs ~3 s and buys nothing here,
        # since every step holds the single DuckDB writer lock anyway.
        executor=dg.in_process_executor,
    )


settings = Settings.from_env()
defs = build_defs(settings)
