import dagster as dg

from crime_assets.defs.partitions import monthly_partitions


def monthly_assets_job(assets, excluded_checks=()):
    """The main job: every monthly asset, plus the unpartitioned inputs they read (the stations),
    for one month or a range of months in one run. The model assets, which span many months, are not in it.
    ``excluded_checks`` (the freshness checks) are evaluated by their own sensor, not by every backfill."""
    monthly = [a for a in assets if a.partitions_def == monthly_partitions]
    keys = {key for a in monthly for key in a.keys}
    inputs = {dep.asset_key for a in monthly for dep in a.specs_by_key.values() for dep in dep.deps} - keys
    return dg.define_asset_job(
        "monthly_assets_job",
        selection=dg.AssetSelection.assets(*keys, *inputs) - dg.AssetSelection.checks(*excluded_checks),
        partitions_def=monthly_partitions,
        description="Every monthly asset for a month or a range of months, in one run.",
    )
