"""Resources of the ingestion slice: where records come from, and the quality gates' thresholds."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import dagster as dg
import pandas as pd
from pydantic import Field, PrivateAttr

from crime_assets.common.settings import SAMPLE_DIR, SOURCES
from crime_assets.ingestion.change_detection import (
    export_fingerprints, socrata_fingerprints, socrata_summariser,
)
from crime_assets.ingestion.export_index import file_months
from crime_assets.ingestion.quality import Thresholds
from crime_assets.ingestion.socrata import SocrataClient
from crime_assets.ingestion.sources import ExportSource, IncidentSource, SocrataSource, resolve_export_files
from crime_assets.ingestion.stations import read_stations_csv, stations_from_records


class CrimeSource(dg.ConfigurableResource):
    """Where incidents and stations come from: the bulk export (offline) or the live Socrata API."""

    # Fields without a default come from the environment: crime_assets/common/settings.py holds their
    # variables and defaults, crime_assets/defs/resources.py hands them over.
    kind: str = Field(description="export | socrata (CRIME_SOURCE)")
    export_path: str = Field(description="bulk-export file, folder or glob (CRIME_EXPORT_PATH)")
    socrata_domain: str = Field(description="SOCRATA_DOMAIN")
    socrata_app_token: Optional[str] = Field(default=None, description="SOCRATA_APP_TOKEN (secret)")
    socrata_page_size: int = Field(description="SOCRATA_PAGE_SIZE")
    incidents_dataset: str = Field(description="SOCRATA_INCIDENTS_DATASET")
    stations_dataset: str = Field(description="SOCRATA_STATIONS_DATASET")
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
        new-data sensor; see crime_assets.ingestion.change_detection). ``known``: the previous fingerprints."""
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
