"""Declarative automation: when a month's raw incidents change, everything built from that month follows.

The policy, applied centrally (``definitions.py``) so the asset modules stay free of it:

- Every **monthly asset downstream of raw_incidents** gets ``monthly_rematerialisation``: eager-like (an
  upstream month was updated, or a partition went missing, since this partition was last requested or
  updated), but for every month, not only the latest one; never while an upstream month is missing or
  running, or while the partition itself is running; and only when the upstream month's **blocking
  checks passed** for the materialisation it is built from. Updates of unpartitioned inputs (the
  stations, a model) do not trigger it: they would rebuild 25 years of months, and the monthly schedule
  refreshes the stations anyway. A whole chain (enriched -> H3 -> hotspots ...) is requested in one tick
  and one run, so a run's own materialisations never trigger it again: one upstream change, one run.
- **police_stations** is materialised when it is missing (a fresh install), so the chain of the first
  month can run without a manual step. Refreshes come from the monthly schedule.
- Assets that are not monthly (the model, owned by its own retraining policy) and assets that already
  carry a condition set by their owner are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg

from crime_assets.defs.jobs import NEEDS_A_CHAMPION
from crime_assets.defs.partitions import monthly_partitions
from crime_assets.settings import AutomationSettings

RAW = dg.AssetKey("raw_incidents")
STATIONS = dg.AssetKey("police_stations")
AutomationCondition = dg.AutomationCondition


class BlockingChecksPassed(dg.AutomationCondition[dg.AssetKey]):
    """True for a partition of an asset when the run of its latest materialisation evaluated every blocking
    check of the asset and none failed with ERROR severity (a WARN failure does not block, as in a run).

    A run over a range of months evaluates each check once for the range, so one failing month holds
    back the whole range: the safe side.
    """

    @property
    def name(self) -> str:
        return "blocking_checks_passed"

    @property
    def description(self) -> str:
        return "The blocking checks run with this partition's latest materialisation passed"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        graph, candidates = context.asset_graph, context.candidate_subset
        blocking = [k for k in graph.get(context.key).check_keys if graph.get(k).blocking]
        if not blocking or candidates.is_empty:
            return dg.AutomationResult(context=context, true_subset=candidates)
        instance = context.asset_graph_view.instance
        if not candidates.is_partitioned:
            passed = _latest_materialisation_passed(instance, context.key, None, blocking)
            return dg.AutomationResult(context=context, true_subset=candidates if passed else context.get_empty_subset())
        passed_keys = {
            partition for partition in candidates.expensively_compute_partition_keys()
            if _latest_materialisation_passed(instance, context.key, partition, blocking)
        }
        true_subset = context.asset_graph_view.get_subset_from_partition_keys(
            context.key, context.partitions_def, passed_keys)
        return dg.AutomationResult(context=context, true_subset=true_subset)


def _latest_materialisation_passed(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, blocking: list[dg.AssetCheckKey]
) -> bool:
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not latest:
        return False
    evaluations = [
        record.event_log_entry.dagster_event.asset_check_evaluation_data
        for record in instance.get_records_for_run(
            latest[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    ]
    for check_key in blocking:
        results = [e for e in evaluations if e.asset_check_key == check_key]
        if not results or any(not e.passed and e.severity == dg.AssetCheckSeverity.ERROR for e in results):
            return False
    return True


def monthly_rematerialisation(unpartitioned_inputs: dg.AssetSelection) -> dg.AutomationCondition:
    """``AutomationCondition.eager()`` without its latest-time-window restriction, triggered by monthly
    upstream assets only, and gated on the upstream months' blocking checks."""
    return (
        (
            AutomationCondition.newly_missing()
            | AutomationCondition.any_deps_updated().ignore(unpartitioned_inputs)
        ).since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        # An unpartitioned input requested in this same tick would run in a separate run, maybe later:
        # wait until it exists.
        & ~AutomationCondition.any_deps_match(AutomationCondition.missing())
        .allow(unpartitioned_inputs)
        .with_label("unpartitioned_input_missing")
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
        # Dagster's all_deps_blocking_checks_passed() judges an unpartitioned check on a monthly asset by
        # its latest execution, whatever month that was, and counts a WARN failure as blocking. This asks,
        # month by month, about the checks run with the materialisation the month is built from.
        & AutomationCondition.all_deps_match(BlockingChecksPassed() | AutomationCondition.will_be_requested())
        .with_label("upstream_blocking_checks_passed")
    ).with_label("monthly_rematerialisation")


def materialise_when_missing() -> dg.AutomationCondition:
    """Once when missing; not again while a run for it is queued or running, nor after it failed
    (then a person looks: the failure is alerted)."""
    return (
        AutomationCondition.missing()
        & ~AutomationCondition.newly_requested()
        & ~AutomationCondition.in_progress()
        & ~AutomationCondition.execution_failed()
    ).with_label("materialise_when_missing")


def automated_keys(assets: Sequence[dg.AssetsDefinition]) -> set[dg.AssetKey]:
    """The keys this module sets conditions on: monthly assets downstream of raw_incidents, and the
    stations, unless their owner already gave them a condition."""
    downstream = dg.AssetSelection.assets(RAW).downstream(include_self=False).resolve(assets)
    chosen = set()
    for assets_def in assets:
        for spec in assets_def.specs:
            if spec.automation_condition is not None:
                continue
            if spec.group_name in NEEDS_A_CHAMPION:  # drift_report: fails until a model is promoted
                continue
            if spec.key == STATIONS or (spec.key in downstream and spec.partitions_def == monthly_partitions):
                chosen.add(spec.key)
    return chosen


def automation_policy(assets: Sequence[dg.AssetsDefinition]) -> Callable[[dg.AssetSpec], dg.AssetSpec]:
    """The spec -> spec function for ``dg.map_asset_specs`` that applies the policy above to ``assets``."""
    keys = automated_keys(assets)
    unpartitioned = dg.AssetSelection.assets(
        *(spec.key for a in assets for spec in a.specs if spec.partitions_def != monthly_partitions)
    )
    monthly = monthly_rematerialisation(unpartitioned)

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key not in keys:
            return spec
        condition = materialise_when_missing() if spec.key == STATIONS else monthly
        return spec.replace_attributes(automation_condition=condition)

    return apply


def build_automation_sensor(assets: Sequence[dg.AssetsDefinition], settings: AutomationSettings) -> dg.SensorDefinition:
    """Evaluates the conditions above on ``assets`` (after ``automation_policy`` was applied). Explicit, so
    it is RUNNING by default (Dagster's implicit automation sensor starts stopped), and evaluated in the
    code server, which the custom BlockingChecksPassed condition needs."""
    ours = {"monthly_rematerialisation", "materialise_when_missing"}
    keys = sorted(
        (spec.key for a in assets for spec in a.specs
         if spec.automation_condition is not None and spec.automation_condition.get_label() in ours),
        key=dg.AssetKey.to_user_string,
    )
    return dg.AutomationConditionSensorDefinition(
        "downstream_automation_sensor",
        target=dg.AssetSelection.assets(*keys),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.automation_interval_s,
        use_user_code_server=True,
        description="Rematerialises the monthly assets downstream of a changed month of raw_incidents, once its "
                    "blocking checks passed; materialises the police stations when they are missing.",
    )
