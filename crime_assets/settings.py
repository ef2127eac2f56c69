"""Every setting of the platform, read from the environment in this one place.

| variable | default | meaning |
|---|---|---|
| CRIME_DATA_DIR | ./data | everything the platform writes: warehouse.duckdb, reports, the MLflow store, logs |
| CRIME_SOURCE | export | `export` (bulk CSV files; the shipped sample by default) or `socrata` (live API) |
| CRIME_EXPORT_PATH | the shipped sample | a bulk-export file, a folder of them, or a glob |
| SOCRATA_DOMAIN | data.cityofchicago.org | portal host, or `http://host:port` for a mirror |
| SOCRATA_APP_TOKEN | (none) | app token; secret, read through EnvVar only |
| SOCRATA_PAGE_SIZE | 50000 | rows per API page |
| SOCRATA_INCIDENTS_DATASET | ijzp-q8t2 | crimes dataset id |
| SOCRATA_STATIONS_DATASET | z8bn-74gv | police stations dataset id |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SAMPLE_DIR = Path(__file__).parent / "sample_data"
SOURCES = ("export", "socrata")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    source: str
    export_path: str
    socrata_domain: str
    socrata_page_size: int
    incidents_dataset: str
    stations_dataset: str
    has_app_token: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        source = environ.get("CRIME_SOURCE", "export").strip().lower()
        if source not in SOURCES:
            raise ValueError(f"CRIME_SOURCE must be one of {SOURCES}, got {source!r}")
        page_size_text = environ.get("SOCRATA_PAGE_SIZE", "50000")
        try:
            page_size = int(page_size_text)
        except ValueError:
            raise ValueError(f"SOCRATA_PAGE_SIZE must be a whole number, got {page_size_text!r}") from None
        if not 1 <= page_size <= 1_000_000:
            raise ValueError(f"SOCRATA_PAGE_SIZE must be between 1 and 1,000,000, got {page_size}")
        return cls(
            data_dir=Path(environ.get("CRIME_DATA_DIR", "./data")).expanduser().resolve(),
            source=source,
            export_path=environ.get("CRIME_EXPORT_PATH", str(SAMPLE_DIR)),
            socrata_domain=environ.get("SOCRATA_DOMAIN", "data.cityofchicago.org"),
            socrata_page_size=page_size,
            incidents_dataset=environ.get("SOCRATA_INCIDENTS_DATASET", "ijzp-q8t2"),
            stations_dataset=environ.get("SOCRATA_STATIONS_DATASET", "z8bn-74gv"),
            has_app_token=bool(environ.get("SOCRATA_APP_TOKEN")),
        )
