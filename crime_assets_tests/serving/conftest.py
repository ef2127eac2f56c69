"""A real MLflow store holding two trained versions of the arrest model, and the scoring service on it.

The service is the documented command (``uvicorn crime_assets.serving.app:app``) in its own process on a
free loopback port; the tests talk to it over HTTP.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest
from mlflow import MlflowClient

from crime_assets.ingestion.socrata_records import socrata_records
from crime_assets.definitions import build_defs
from crime_assets.runs import materialize_months
from crime_assets.common.settings import Settings
from crime_assets_tests.helpers import REPO, settings_for
from crime_assets_tests.servers import Service, free_port, start_service

# Small, so a training takes seconds: train 2015-01..03, validate 2015-04, test 2015-05..06. The second
# version stops earlier, so its scores differ from the first's.
FIRST = {"end_month": "2015-06", "window_months": 3, "validation_months": 1, "test_months": 2, "max_rounds": 25}
SECOND = {**FIRST, "max_rounds": 8}
MAX_BATCH = 1000
DAY = "2015-06-15"  # a day of the test months: the records the tests score


@dataclass(frozen=True)
class Store:
    settings: Settings
    versions: tuple[str, str]
    day: list[dict]  # Socrata JSON records of DAY, ordered by id

    @property
    def uri(self) -> str:
        return self.settings.mlflow_tracking_uri

    def client(self) -> MlflowClient:
        return MlflowClient(self.uri, registry_uri=self.uri)

    def set_champion(self, version: str, name: str = "chicago_arrest") -> None:
        self.client().set_registered_model_alias(name, "champion", version)


def train(settings: Settings, config: dict) -> str:
    """One run of arrest_model (without its promotion gate: the tests place the aliases); the new version."""
    defs = build_defs(settings)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("arrest_model")}, asset_check_selection=set())
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                    run_config={"ops": {"arrest_model": {"config": config}}})
    materialization = next(e.event_specific_data.materialization for e in result.all_events
                           if e.event_type_value == "ASSET_MATERIALIZATION")
    return str(materialization.metadata["model_version"].value)


@pytest.fixture(scope="package")
def store(warehouse_2015_2016, tmp_path_factory) -> Store:
    settings = settings_for(tmp_path_factory.mktemp("serving_store"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(warehouse_2015_2016.data_dir / "warehouse.duckdb", settings.data_dir / "warehouse.duckdb")
    assert materialize_months(["arrest_features"], "2015-01", "2015-06", settings).success
    versions = (train(settings, FIRST), train(settings, SECOND))
    with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as con:
        day = con.execute("SELECT * FROM raw_incidents WHERE CAST(occurred_at AS DATE) = ? ORDER BY id", [DAY]).df()
    store = Store(settings, versions, socrata_records(day))
    store.set_champion(versions[0])
    return store


@dataclass
class Scoring:
    service: Service
    url: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0)

    def wait_for(self, what: str, predicate, timeout: float = 60.0) -> httpx.Response:
        """Poll /health until ``predicate(response)``; fails naming ``what`` with the service's log."""
        deadline, last = time.monotonic() + timeout, None
        with self.client() as http:
            while time.monotonic() < deadline:
                self.service.assert_running()
                try:
                    last = http.get("/health")
                    if predicate(last):
                        return last
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        seen = f"{last.status_code} {last.text}" if last is not None else "no answer"
        raise AssertionError(f"{what}: not within {timeout} s; last /health: {seen}\n{self.service.log_tail()}")


def serving_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRIME_", "MLFLOW_", "ARREST_", "DAGSTER_"))}
    return env | {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "CRIME_DATA_DIR": str(data_dir),
                  "CRIME_SERVING_REFRESH_SECONDS": "1", "CRIME_SERVING_MAX_BATCH": str(MAX_BATCH)} | extra


def start_scoring(data_dir: Path, log_dir: Path, **extra: str) -> Scoring:
    """The README's command, on a free port, answering /health (with any status)."""
    port = free_port()
    service = start_service(f"scoring_{port}", [sys.executable, "-m", "uvicorn", "crime_assets.serving.app:app",
                                                "--host", "127.0.0.1", "--port", str(port)],
                            cwd=log_dir, env=serving_env(data_dir, **extra), log_dir=log_dir)
    scoring = Scoring(service, f"http://127.0.0.1:{port}")
    scoring.wait_for("the service answering", lambda r: r.status_code in (200, 503))
    return scoring


@pytest.fixture(scope="package")
def scoring(store, tmp_path_factory) -> Iterator[Scoring]:
    """The service on the store, serving the champion (version 1) once this returns."""
    scoring = start_scoring(store.settings.data_dir, tmp_path_factory.mktemp("scoring_logs"))
    try:
        scoring.wait_for("the champion loaded", lambda r: r.status_code == 200)
        yield scoring
    finally:
        scoring.service.stop()
