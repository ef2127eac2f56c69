"""The crime_assets code location: one Definitions object for the CLI, `dagster dev` and the daemon."""

import dagster as dg

from crime_assets.defs.enrichment import assets as enrichment
from crime_assets.defs.ingestion import assets as ingestion
from crime_assets.defs.resources import build_resources
from crime_assets.settings import Settings

settings = Settings.from_env()

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingestion, enrichment]),
    resources=build_resources(settings),
    # Steps of one run share a process: a subprocess per step costs ~3 s and buys nothing here,
    # since every step holds the single DuckDB writer lock anyway.
    executor=dg.in_process_executor,
)
