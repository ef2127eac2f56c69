"""The servers of crime_assets/devservers.py for tests: without PostgreSQL a test is skipped (fails in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from crime_assets.devservers import (  # noqa: F401 (re-exported for the tests)
    CHROMIUM_FLAGS, POSTGRES_HOW, Postgres, Service, chromium_path, dagster_bin, dagster_env, dagster_services,
    free_port, fresh_dagster_home, postgres_bindir, start_service,
)
from crime_assets.devservers import postgres_server as _postgres_server
from crime_assets_tests.helpers import require  # noqa: F401


@contextmanager
def postgres_server(**kwargs) -> Iterator[Postgres]:
    require("postgresql", postgres_bindir(), POSTGRES_HOW)
    with _postgres_server(**kwargs) as pg:
        yield pg
