"""The crime_assets code location: one Definitions object for the CLI, `dagster dev` and the daemon.

The assets and asset checks of every slice are found by Dagster in ``crime_assets/defs/`` (a dg project's
defs folder, ``dg.load_from_defs_folder``); what depends on the settings (resources, the job, schedule and
sensors, the automation policy) is added here from ``crime_assets.common.settings``.
"""

from pathlib import Path

import dagster as dg

from crime_assets.common.settings import Settings
from crime_assets.defs.automation.conditions import automation_policy, build_automation_sensor
from crime_assets.defs.automation.jobs import monthly_assets_job
from crime_assets.defs.automation.schedules import build_monthly_schedule
from crime_assets.defs.hotspots.assets import with_explorer_link
from crime_assets.defs.ingestion.sensors import build_new_data_sensor
from crime_assets.defs.monitoring.alert_sensors import build_alert_sensor
from crime_assets.defs.monitoring.drift_sensors import build_retrain_sensor
from crime_assets.defs.monitoring.freshness import build_freshness_checks, build_freshness_sensor
from crime_assets.defs.resources import build_resources

PROJECT = Path(__file__).parent


def build_defs(settings: Settings, resources: dict | None = None) -> dg.Definitions:
    """The definitions for these settings; ``resources`` replaces single resources (tests, notebooks)."""
    slices = dg.load_from_defs_folder(path_within_project=PROJECT)
    # Declarative automation is applied here, not in the asset modules: every monthly asset downstream
    # of raw_incidents follows a changed month (crime_assets/defs/automation/conditions.py); drift_report
    # once a champion exists.
    assets = dg.map_asset_specs(automation_policy(slices.assets), slices.assets)
    assets = with_explorer_link(assets, settings.explorer_url)
    freshness_checks = build_freshness_checks(settings.alerts.freshness_days)
    job = monthly_assets_job(assets, excluded_checks=freshness_checks)
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_monthly_schedule(job, settings.automation)],
        sensors=[
            build_new_data_sensor(settings.automation),
            build_automation_sensor(assets, settings.automation),
            # Failed checks and runs -> webhook, e-mail, alert log (crime_assets/defs/monitoring).
            build_alert_sensor(settings.alerts.interval_s),
            build_freshness_sensor(freshness_checks),
            # drift_report past a threshold -> retrain arrest_model and promote it if it clears its gate.
            build_retrain_sensor(),
        ],
        asset_checks=[*slices.asset_checks, *freshness_checks],
        resources=build_resources(settings) | (resources or {}),
        # Steps of one run share a process: a subprocess per step costs ~3 s and buys nothing here,
        # since every step holds the single DuckDB writer lock anyway.
        executor=dg.in_process_executor,
    )


settings = Settings.from_env()
defs = build_defs(settings)
