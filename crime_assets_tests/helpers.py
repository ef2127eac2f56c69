"""Shared test helpers: run assets through a real Dagster instance into a real DuckDB file."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from crime_assets.common.settings import Settings
from crime_assets.defs.ingestion.resources import CrimeSource
from crime_assets.defs.resources import build_source
from crime_assets.ingestion.sample_export import redated, sample_rows, write_export  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[1]
SHARED_CHICAGO = REPO.parent / "shared" / "data" / "chicago"
SAMPLE = REPO / "crime_assets" / "sample_data"

# The clock of every test that needs "now" (the newest partition, the sensors' watched months, freshness):
# a fixed moment, so that no test depends on the date it runs. Its last complete month is NEWEST.
CLOCK = datetime(2026, 11, 21, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
NEWEST = "2026-10"


def at_clock(moment: datetime = CLOCK):
    """Partitions (the newest month, the months a sensor watches) as they are at ``moment``."""
    return dg.partition_loading_context(effective_dt=moment)


def require(what: str, found: object, how: str) -> None:
    """Fail in CI, skip on a workstation, with a message that says what is missing and how to get it."""
    if found:
        return
    message = f"{what} not installed: {how}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def shared_file(name: str) -> Path:
    """A file of ../shared/data/chicago (the real files beside the repository); CI has them, so there a
    missing file fails the test instead of skipping it."""
    path = SHARED_CHICAGO / name
    require(f"../shared/data/chicago/{name}", path.exists(), "the tests that compare with ../shared need it beside the repository")
    return path


def settings_for(data_dir: Path, **env: str) -> Settings:
    return Settings.from_env({"CRIME_DATA_DIR": str(data_dir), **env})


def socrata_source(domain: str, **fields) -> CrimeSource:
    """The Socrata source of a fake server on loopback (crime_assets_tests/servers.py): quick retries."""
    settings = Settings.from_env({"CRIME_SOURCE": "socrata", "SOCRATA_DOMAIN": domain, "SOCRATA_PAGE_SIZE": "10000"})
    return build_source(settings, **({"max_attempts": 3, "backoff_base_s": 0.01, "request_timeout_s": 5.0} | fields))


def query(settings: Settings, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()
