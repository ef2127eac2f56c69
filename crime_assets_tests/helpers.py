"""Shared test helpers: run assets through a real Dagster instance into a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from crime_assets.definitions import build_defs
from crime_assets.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_CHICAGO = REPO.parent / "shared" / "data" / "chicago"
SAMPLE = REPO / "crime_assets" / "sample_data"


def settings_for(data_dir: Path, **env: str) -> Settings:
    return Settings.from_env({"CRIME_DATA_DIR": str(data_dir), **env})


def range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def materialize_months(
    selection: str | list[str], first: str, last: str | None, settings: Settings,
    instance: dg.DagsterInstance | None = None, raise_on_error: bool = True, resources: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """One run over the months first...last, like `dagster asset materialize --partition-range`."""
    defs = build_defs(settings, resources)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(dg.AssetSelection.from_coercible(selection).resolve(defs.resolve_asset_graph()))
    )
    tags = range_tags(first, last or first) if last and last != first else {}
    return job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        partition_key=first if not tags else None,
        tags=tags,
        raise_on_error=raise_on_error,
    )


def query(settings: Settings, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()
