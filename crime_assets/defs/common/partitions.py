import dagster as dg

from crime_assets.defs.common.warehouse_resource import WAREHOUSE_POOL

# Keys like "2016-03"; months follow Chicago's calendar, and the newest key is the last complete month.
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date="2001-01", fmt="%Y-%m", timezone="America/Chicago", end_offset=0
)


def monthly_warehouse_asset(**kwargs):
    """``dg.asset`` for a monthly table of the warehouse: monthly partitions, a range of months in one run
    (single-run backfills, like ``--partition-range``), and the warehouse's one-writer pool."""
    return dg.asset(partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
                    pool=WAREHOUSE_POOL, **kwargs)
