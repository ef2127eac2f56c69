"""Resources: the DuckDB warehouse and the source of records, configured from ``crime_assets.settings``."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import dagster as dg
import duckdb
import pandas as pd
from pydantic import Field, PrivateAttr

from crime_assets.core.change_detection import (
    export_fingerprints, socrata_fingerprints, socrata_summariser,
)
from crime_assets.core.export_index import file_months
from crime_assets.core.quality import Thresholds
from crime_assets.core.socrata import SocrataClient
from crime_assets.core.sources import ExportSource, IncidentSource, SocrataSource, resolve_export_files
from crime_assets.core.stations import read_stations_csv, stations_from_records
from crime_assets.defs.alerts.resources import build_alert_destinations
from crime_assets.defs.model.resources import build_model_resources
from crime_assets.settings import SAMPLE_DIR, SOURCES, Settings

WAREHOUSE_POOL = "duckdb_warehouse"  # every asset that writes the DuckDB file runs in this pool (limit 1)


class WarehouseLockedError(RuntimeError):
    pass


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file ``warehouse.duckdb`` in the data directory; tables are named after their assets."""

    data_dir: str = Field(description="CRIME_DATA_DIR: everything the platform writes")
    lock_timeout_s: float = Field(default=120.0, description="How long to wait for another process's lock")
    chunk_months: int = Field(default=24, description="months processed at a time inside one run (CRIME_CHUNK_MONTHS)")
    memory_limit: str = Field(default="2GB", description="DuckDB memory limit; beyond it DuckDB spills to disk")

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / "warehouse.duckdb"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the file; waits (with backoff) while another process holds its lock."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline, delay = time.monotonic() + self.lock_timeout_s, 0.2
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise WarehouseLockedError(
                        f"cannot open {self.path}: another process holds it ({error}); "
                        "DuckDB allows one writer process per file"
                    ) from error
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
        try:
            if not read_only:
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
                con.execute(f"SET temp_directory = '{Path(self.data_dir) / 'tmp'}'")
            yield con
        finally:
            con.close()


class CrimeSource(dg.ConfigurableResource):
    """Where incidents and stations come from: the bulk export (offline) or the live Socrata API."""

    kind: str = Field(default="export", description="export | socrata (CRIME_SOURCE)")
    export_path: str = Field(default=str(SAMPLE_DIR), description="bulk-export file, folder or glob (CRIME_EXPORT_PATH)")
    socrata_domain: str = Field(default="data.cityofchicago.org", description="SOCRATA_DOMAIN")
    socrata_app_token: Optional[str] = Field(default=None, description="SOCRATA_APP_TOKEN (secret)")
    socrata_page_size: int = Field(default=50_000, description="SOCRATA_PAGE_SIZE")
    incidents_dataset: str = "ijzp-q8t2"
    stations_dataset: str = "z8bn-74gv"
    request_timeout_s: float = 60.0
    max_attempts: int = 6
    backoff_base_s: float = 1.0
    stations_snapshot: str = Field(default=str(SAMPLE_DIR / "police_stations.csv"),
                                   description="the stations CSV used with the export source")
    cache_dir: Optional[str] = Field(default=None, description="where to cache which months each export file holds")

    _socrata: Optional[SocrataClient] = PrivateAttr(default=None)

    def _client(self) -> SocrataClient:
        # One client per resource: one HTTP session, and at most one "no app token" warning.
        if self._socrata is None:
            self._socrata = self._new_client()
        return self._socrata

    def _new_client(self) -> SocrataClient:
        return SocrataClient(domain=self.socrata_domain, app_token=self.socrata_app_token or None,
                             page_size=self.socrata_page_size, timeout=self.request_timeout_s,
                             max_attempts=self.max_attempts, backoff_base=self.backoff_base_s)

    def _check_kind(self) -> None:
        if self.kind not in SOURCES:
            raise ValueError(f"CRIME_SOURCE must be one of {SOURCES}, got {self.kind!r}")

    def incidents(self, logger: logging.Logger | None = None) -> IncidentSource:
        self._check_kind()
        if self.kind == "export":
            index = Path(self.cache_dir) / "export_months.json" if self.cache_dir else None
            return ExportSource(self.export_path, index_file=index)
        return SocrataSource(self._client(), self.incidents_dataset, logger=logger or logging.getLogger(__name__))

    def stations(self) -> tuple[pd.DataFrame, str]:
        """The stations table and a label of where it came from (no secrets in it)."""
        self._check_kind()
        if self.kind == "export":
            return read_stations_csv(self.stations_snapshot), f"snapshot:{Path(self.stations_snapshot).name}"
        records = self._client().fetch_all(self.stations_dataset)
        return stations_from_records(records), f"socrata:{self.socrata_domain}/{self.stations_dataset}"

    def month_fingerprints(self, months: Sequence[str], known: Mapping[str, str]) -> dict[str, str]:
        """What each month looks like at the source now, as cheaply as the source allows (for the
        new-data sensor; see crime_assets.core.change_detection). ``known``: the previous fingerprints."""
        self._check_kind()
        if self.kind == "export":
            index = Path(self.cache_dir) / "export_months.json" if self.cache_dir else None

            files = resolve_export_files(self.export_path)
            held = file_months(files, index)
            return export_fingerprints(files, months, lambda path: held[Path(path)])
        return socrata_fingerprints(months, known, socrata_summariser(self._client(), self.incidents_dataset))


class QualityGates(dg.ConfigurableResource):
    """Thresholds of the quality gates (asset checks); change them here, or per run in the launchpad."""

    volume_low: float = Field(default=0.5, description="a month below this x its trailing 12-month median fails (ERROR)")
    volume_high: float = Field(default=1.5, description="a month above this x the median is flagged (WARN)")
    volume_min_history: int = Field(default=3, description="earlier months needed before volume is judged")
    max_quarantine_share: float = Field(default=0.05, description="quarantined / all source rows of a month")
    min_geolocated_share: float = Field(default=0.90, description="rows with usable coordinates / all rows")
    max_station_distance_m: float = Field(default=20_000.0, description="farthest plausible nearest station")

    def thresholds(self) -> Thresholds:
        return Thresholds((self.volume_low, self.volume_high), self.volume_min_history, self.max_quarantine_share,
                          self.min_geolocated_share, self.max_station_distance_m)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": Warehouse(data_dir=str(settings.data_dir), chunk_months=settings.chunk_months),
        "quality": QualityGates(),
        "source": CrimeSource(
            kind=settings.source,
            export_path=settings.export_path,
            socrata_domain=settings.socrata_domain,
            # Through EnvVar, so the UI and run config show the variable's name, never its value.
            socrata_app_token=dg.EnvVar("SOCRATA_APP_TOKEN") if settings.has_app_token else None,
            socrata_page_size=settings.socrata_page_size,
            incidents_dataset=settings.incidents_dataset,
            stations_dataset=settings.stations_dataset,
            cache_dir=str(settings.data_dir / "cache"),
        ),
        # The webhook URL and the SMTP password go through EnvVar too (crime_assets/defs/alerts/resources.py).
        "alerts": build_alert_destinations(settings.data_dir, settings.alerts),
        # MLflow store + the IO manager that loads arrest_model back from the registry (defs/model/resources.py).
        **build_model_resources(settings),
    }
