"""A range of months as ONE Dagster run from Python, as `dagster asset materialize --partition-range` does.

Dagster's Python API has no partition-range argument: a ranged run is asked for with two tags, honoured
because every monthly asset has `BackfillPolicy.single_run()`.
"""

from __future__ import annotations

import dagster as dg

from crime_assets.definitions import build_defs
from crime_assets.common.settings import Settings


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """The run tags that make one run cover the months first...last."""
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def materialize_months(
    selection: str | list[str], first: str, last: str | None, settings: Settings,
    instance: dg.DagsterInstance | None = None, raise_on_error: bool = True, resources: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """One in-process run of the selected assets over first...last (``last`` None: the month ``first``) with
    the definitions of ``settings``; ``resources`` replaces single resources. Without ``instance`` the run
    goes to an ephemeral instance."""
    defs = build_defs(settings, resources)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(dg.AssetSelection.from_coercible(selection).resolve(defs.resolve_asset_graph()))
    )
    ranged = bool(last) and last != first
    return job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        partition_key=None if ranged else first,
        tags=partition_range_tags(first, last) if ranged else {},
        raise_on_error=raise_on_error,
    )
