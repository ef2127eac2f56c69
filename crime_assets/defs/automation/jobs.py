import dagster as dg

from crime_assets.defs.common.partitions import monthly_partitions


def monthly_job_keys(assets) -> set[dg.AssetKey]:
    """The monthly assets of the main job: every monthly asset except those that read an asset built from
    many months (drift_report reads champion_model, which is built from arrest_model's training months)."""
    specs = [spec for a in assets for spec in a.specs]
    monthly = {spec.key for spec in specs if spec.partitions_def == monthly_partitions}
    built_from_months = dg.AssetSelection.assets(*monthly).downstream().resolve(assets) - monthly
    readers = dg.AssetSelection.assets(*built_from_months).downstream(include_self=False).resolve(assets)
    return monthly - readers


def monthly_assets_job(assets, excluded_checks=()):
    """The main job: every monthly asset, plus the unpartitioned inputs they read (the stations),
    for one month or a range of months in one run. The model assets, which span many months, and the
    monthly assets that read them (drift_report, which needs a champion) are not in it.
    ``excluded_checks`` (the freshness checks) are evaluated by their own sensor, not by every backfill."""
    keys = monthly_job_keys(assets)
    inputs = {dep.asset_key for a in assets for spec in a.specs if spec.key in keys for dep in spec.deps} - keys
    return dg.define_asset_job(
        "monthly_assets_job",
        selection=dg.AssetSelection.assets(*keys, *inputs) - dg.AssetSelection.checks(*excluded_checks),
        partitions_def=monthly_partitions,
        description="Every monthly asset for a month or a range of months, in one run.",
    )
