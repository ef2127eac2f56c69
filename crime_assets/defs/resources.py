"""Every resource of the code location, configured from ``crime_assets.common.settings``."""

from __future__ import annotations

import dagster as dg

from crime_assets.common.settings import Settings
from crime_assets.defs.common.warehouse_resource import Warehouse
from crime_assets.defs.ingestion.resources import CrimeSource, QualityGates
from crime_assets.defs.model.resources import build_model_resources
from crime_assets.defs.monitoring.alert_resources import build_alert_destinations


def build_warehouse(settings: Settings) -> Warehouse:
    """The warehouse of CRIME_WAREHOUSE; its secrets go through EnvVar, so the UI shows only their names."""
    lake = settings.warehouse
    return Warehouse(
        database=str(settings.warehouse_path) if lake.backend == "duckdb" else ":memory:",
        backend=lake.backend, data_dir=str(settings.data_dir), chunk_months=settings.chunk_months,
        connection_config={"memory_limit": "2GB", "temp_directory": str(settings.data_dir / "tmp")},
        ducklake_catalog=lake.ducklake_catalog, ducklake_data_path=settings.ducklake_data_path,
        ducklake_password=dg.EnvVar("CRIME_DUCKLAKE_PASSWORD") if lake.has_ducklake_password else None,
        s3_endpoint=lake.s3_endpoint, s3_region=lake.s3_region, s3_url_style=lake.s3_url_style,
        s3_access_key_id=lake.s3_access_key_id,
        s3_secret_access_key=dg.EnvVar("CRIME_S3_SECRET_ACCESS_KEY") if lake.has_s3_secret else None,
    )


def build_source(settings: Settings, **fields) -> CrimeSource:
    """The source of CRIME_SOURCE; ``fields`` set the resource's other fields (tests: retries, cache)."""
    return CrimeSource(**{
        "kind": settings.source,
        "export_path": settings.export_path,
        "socrata_domain": settings.socrata_domain,
        # Through EnvVar, so the UI and run config show the variable's name, never its value.
        "socrata_app_token": dg.EnvVar("SOCRATA_APP_TOKEN") if settings.has_app_token else None,
        "socrata_page_size": settings.socrata_page_size,
        "incidents_dataset": settings.incidents_dataset,
        "stations_dataset": settings.stations_dataset,
        "cache_dir": str(settings.data_dir / "cache"),
        **fields,
    })


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": build_warehouse(settings),
        "quality": QualityGates(),
        "source": build_source(settings),
        # The webhook URL and the SMTP password go through EnvVar too (crime_assets/defs/monitoring/alert_resources.py).
        "alerts": build_alert_destinations(settings.data_dir, settings.alerts),
        # MLflow store + the IO manager that loads arrest_model back from the registry (defs/model/resources.py).
        **build_model_resources(settings),
    }
