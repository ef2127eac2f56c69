import dagster as dg

from crime_assets.defs.common.warehouse_resource import WAREHOUSE_POOL

# Keys like "2016-03"; months follow Chicago's calendar, and the newest key is the last complete month.
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date="2001-01", fmt="%Y-%m", timezone="America/Chicago", end_offset=0
)


def monthly_warehouse_asset(**kwargs):
    """``dg.asset`` for a monthly table of the warehouse: monthly partitions, a range of months in one run
    (single-run backfills, like ``--partition-range``), and the warehouse's one-writer pool."""
    return monthly_asset(pool=WAREHOUSE_POOL, **kwargs)


def monthly_asset(**kwargs):
    """``dg.asset`` with monthly partitions and single-run backfills, outside the warehouse pool (for an
    asset that reads the warehouse briefly and spends its time elsewhere)."""
    return dg.asset(partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(), **kwargs)


def month_and_history(months: int) -> dg.TimeWindowPartitionMapping:
    """The dependency of a month M on months M-``months`` ... M of a monthly asset. Months before the
    first partition (2001-01) do not exist and are allowed: the first months simply have less history."""
    return dg.TimeWindowPartitionMapping(start_offset=-months, end_offset=0, allow_nonexistent_upstream_partitions=True)
