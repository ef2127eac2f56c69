import dagster as dg

from crime_assets.defs.common.partitions import monthly_partitions

NEEDS_A_CHAMPION = {"monitoring"}


def monthly_assets_job(assets, excluded_checks=()):
    """The main job: every monthly asset, plus the unpartitioned inputs they read (the stations),
    for one month or a range of months in one run. The model assets, which span many months, are not in it.
    ``excluded_checks`` (the freshness checks) are evaluated by their own sensor, not by every backfill."""
    # drift_report judges a month against the champion model: it runs once a champion exists
    # (the downstream automation waits for one), not in every backfill of history.
    monthly = [a for a in assets if a.partitions_def == monthly_partitions
               and not any(spec.group_name in NEEDS_A_CHAMPION for spec in a.specs)]
    keys = {key for a in monthly for key in a.keys}
    inputs = {dep.asset_key for a in monthly for dep in a.specs_by_key.values() for dep in dep.deps} - keys
    return dg.define_asset_job(
        "monthly_assets_job",
        selection=dg.AssetSelection.assets(*keys, *inputs) - dg.AssetSelection.checks(*excluded_checks),
        partitions_def=monthly_partitions,
        description="Every monthly asset for a month or a range of months, in one run.",
    )
