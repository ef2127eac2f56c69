"""The crime_assets code location: one Definitions object for the CLI, `dagster dev` and the daemon."""

import dagster as dg

from crime_assets.defs.enrichment import assets as enrichment_assets
from crime_assets.defs.ingestion import assets as ingestion_assets
from crime_assets.defs.jobs import monthly_assets_job
from crime_assets.defs.resources import build_resources
from crime_assets.settings import Settings

# One module per domain holding its assets and asset checks.
ASSET_MODULES = [
    ingestion_assets,
    enrichment_assets,
]


def build_defs(settings: Settings, resources: dict | None = None) -> dg.Definitions:
    """The definitions for these settings; ``resources`` replaces single resources (tests, notebooks)."""
    assets = dg.load_assets_from_modules(ASSET_MODULES)
    return dg.Definitions(
        assets=assets,
        jobs=[monthly_assets_job(assets)],
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        resources=build_resources(settings) | (resources or {}),
        # Steps of one run share a process: a subprocess per step costs ~3 s and buys nothing here,
        # since every step holds the single DuckDB writer lock anyway.
        executor=dg.in_process_executor,
    )


settings = Settings.from_env()
defs = build_defs(settings)
