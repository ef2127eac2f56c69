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
- **History readers** (``HISTORY_READERS``): arrest_features of month M reads incidents_enriched of the 12
  months before M, hotspots reads h3_monthly_stats of the 12 months before M, but each declares only its
  own month (a 12-month partition mapping would hold back the first year of any warehouse). So their
  monthly condition is also triggered by ``HistoryUpdated``: a month of that window got a materialisation,
  newer than M's, whose blocking checks passed. Once per such materialisation, for materialised months only.
- **drift_report** (groups in ``NEEDS_A_CHAMPION``) gets the same monthly condition, gated on
  ``ChampionExists``: a promotion gate of arrest_model has named a champion of the registered model that
  drift_report judges against (read from the gate's check results in the Dagster instance, no MLflow).
- **police_stations** is materialised when it is missing (a fresh install), so the chain of the first
  month can run without a manual step. Refreshes come from the monthly schedule.
- Assets that are not monthly (the model, owned by its own retraining policy) and assets that already
  carry a condition set by their owner are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import dagster as dg

from crime_assets.model.feature_history import HISTORY_MONTHS, history_months
from crime_assets.defs.hotspots.assets import HotspotsConfig
from crime_assets.defs.automation.jobs import NEEDS_A_CHAMPION
from crime_assets.defs.common.partitions import monthly_partitions
from crime_assets.common.settings import AutomationSettings

RAW = dg.AssetKey("raw_incidents")
STATIONS = dg.AssetKey("police_stations")
AutomationCondition = dg.AutomationCondition

# Monthly assets whose month M also reads the given months before M of another monthly asset, without
# declaring it: reader -> (source, months). The windows are the readers' own defaults (HISTORY_MONTHS;
# hotspots' run config default): a run configured with a longer window is not followed further back.
HISTORY_READERS: dict[dg.AssetKey, tuple[dg.AssetKey, int]] = {
    dg.AssetKey("arrest_features"): (dg.AssetKey("incidents_enriched"), HISTORY_MONTHS),
    dg.AssetKey("hotspots"): (dg.AssetKey("h3_monthly_stats"), HotspotsConfig.model_fields["history_months"].default),
}
# The promotion gate of arrest_model; its evaluations say which version is the champion afterwards.
PROMOTION_GATE = dg.AssetCheckKey(dg.AssetKey("arrest_model"), "challenger_clears_promotion_gate")


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


class HistoryUpdated(dg.AutomationCondition[dg.AssetKey]):
    """True for a materialised month M of an asset that reads ``source`` of the ``months`` months before M,
    when one of those months got a materialisation newer than M's latest one whose blocking checks passed
    (the same judgement as ``BlockingChecksPassed``), and that materialisation was not yet reported for M
    on an earlier evaluation: once per (M, newest such materialisation). Used as a trigger inside
    ``since_last_handled()``, so a request stays pending while M is running, and a failed run is not
    retried on every tick; a later materialisation of a history month triggers again.

    Never-materialised months are left to ``newly_missing()``. Two storage queries per evaluation (the
    newest materialisation of every month, of the source and of this asset); the checks are read only for
    history months newer than a reader's month.
    """

    def __init__(self, source: dg.AssetKey, months: int):
        self.source, self.months = source, months

    @property
    def name(self) -> str:
        return "history_updated"

    @property
    def description(self) -> str:
        return (f"One of the {self.months} months of {self.source.to_user_string()} before this month was "
                "materialised after it, and its blocking checks passed")

    @property
    def requires_cursor(self) -> bool:
        return True

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        if context.candidate_subset.is_empty or not context.asset_graph.has(self.source):
            return dg.AutomationResult(context=context, true_subset=context.get_empty_subset(), cursor=context.cursor)
        graph, instance = context.asset_graph, context.asset_graph_view.instance
        materialised = dg.DagsterEventType.ASSET_MATERIALIZATION
        sources = instance.get_latest_storage_id_by_partition(self.source, materialised)
        pending: dict[str, int] = {}
        if sources:
            candidates = set(context.candidate_subset.expensively_compute_partition_keys())
            own = {month: storage_id for month, storage_id
                   in instance.get_latest_storage_id_by_partition(context.key, materialised).items()
                   if month in candidates}
            blocking = [k for k in graph.get(self.source).check_keys if graph.get(k).blocking]
            pending = _newer_history(own, sources, self.months, lambda month: (
                not blocking or _latest_materialisation_passed(instance, self.source, month, blocking)))
        reported: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        fired = {m for m, storage_id in pending.items() if storage_id > reported.get(m, -1)}
        true_subset = context.asset_graph_view.get_subset_from_partition_keys(
            context.key, context.partitions_def, fired)
        # Remembered: each month's newest pending history materialisation, reported once.
        return dg.AutomationResult(context=context, true_subset=true_subset,
                                   cursor=json.dumps(pending, sort_keys=True))


def _newer_history(own: Mapping[str, int], sources: Mapping[str, int], months: int,
                   passed: Callable[[str], bool]) -> dict[str, int]:
    """For each month of ``own`` (latest storage id by month): the newest storage id among the ``months``
    months before it in ``sources`` that is newer than its own and whose month ``passed``; months without
    one are left out. ``passed`` is asked at most once per source month."""
    verdicts: dict[str, bool] = {}

    def ok(month: str) -> bool:
        if month not in verdicts:
            verdicts[month] = passed(month)
        return verdicts[month]

    newest = {}
    for month, own_id in own.items():
        newer = sorted(((sources[m], m) for m in history_months(month, months)
                        if sources.get(m, -1) > own_id), reverse=True)
        found = next((storage_id for storage_id, m in newer if ok(m)), None)
        if found is not None:
            newest[month] = found
    return newest


class ChampionExists(dg.AutomationCondition[dg.AssetKey]):
    """True (for every partition) once arrest_model's promotion gate has named a champion of the registered
    model ``model_name``: its newest evaluation for that model says ``champion_now`` is a version. Read from
    the gate's check results in the Dagster instance; a champion set in MLflow by hand is not seen."""

    def __init__(self, model_name: str):
        self.model_name = model_name

    @property
    def name(self) -> str:
        return "champion_exists"

    @property
    def description(self) -> str:
        return f"The promotion gate of arrest_model has named a champion of {self.model_name}"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        if context.candidate_subset.is_empty or champion_named(context.asset_graph_view.instance,
                                                              self.model_name) is None:
            return dg.AutomationResult(context=context, true_subset=context.get_empty_subset())
        return dg.AutomationResult(context=context, true_subset=context.candidate_subset)


def champion_named(instance: dg.DagsterInstance, model_name: str, page: int = 20) -> str | None:
    """The champion version (``v3``) the newest promotion-gate evaluation for ``model_name`` left, or None
    (no evaluation for that model, or none promoted yet). The gate records ``model`` ("<name> v<version>")
    and ``champion_now`` ("v<version>" or "none") in its check metadata."""
    cursor = None
    while True:
        records = instance.event_log_storage.get_asset_check_execution_history(
            PROMOTION_GATE, limit=page, cursor=cursor)
        for record in records:
            # Planned or failed executions (an exception, not a verdict) carry no evaluation: skipped.
            metadata = record.evaluation.metadata if record.evaluation else {}
            model, champion = metadata.get("model"), metadata.get("champion_now")
            if model is None or champion is None or str(model.value).rsplit(" v", 1)[0] != model_name:
                continue
            return None if champion.value in ("", "none") else str(champion.value)
        if len(records) < page:
            return None
        cursor = records[-1].id


def monthly_rematerialisation(unpartitioned_inputs: dg.AssetSelection,
                              history: tuple[dg.AssetKey, int] | None = None) -> dg.AutomationCondition:
    """``AutomationCondition.eager()`` without its latest-time-window restriction, triggered by monthly
    upstream assets only (and, for a history reader, by ``HistoryUpdated(*history)``), and gated on the
    upstream months' blocking checks."""
    trigger = AutomationCondition.newly_missing() | AutomationCondition.any_deps_updated().ignore(unpartitioned_inputs)
    if history is not None:
        trigger = trigger | HistoryUpdated(*history)
    return (
        trigger.since_last_handled()
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
    """The keys this module sets conditions on: monthly assets downstream of raw_incidents (drift_report
    included), and the stations, unless their owner already gave them a condition."""
    downstream = dg.AssetSelection.assets(RAW).downstream(include_self=False).resolve(assets)
    chosen = set()
    for assets_def in assets:
        for spec in assets_def.specs:
            if spec.automation_condition is not None:
                continue
            if spec.key == STATIONS or (spec.key in downstream and spec.partitions_def == monthly_partitions):
                chosen.add(spec.key)
    return chosen


def drift_after_a_champion(unpartitioned_inputs: dg.AssetSelection, model_name: str) -> dg.AutomationCondition:
    """``monthly_rematerialisation`` for an asset that judges months against the champion model: held back
    until a champion of ``model_name`` exists (the pending months then run)."""
    return (monthly_rematerialisation(unpartitioned_inputs) & ChampionExists(model_name)).with_label(
        "monthly_rematerialisation_once_a_champion_exists")


def automation_policy(assets: Sequence[dg.AssetsDefinition],
                      model_name: str) -> Callable[[dg.AssetSpec], dg.AssetSpec]:
    """The spec -> spec function for ``dg.map_asset_specs`` that applies the policy above to ``assets``;
    ``model_name`` is the registered model drift_report judges against (ARREST_MODEL_NAME)."""
    keys = automated_keys(assets)
    unpartitioned = dg.AssetSelection.assets(
        *(spec.key for a in assets for spec in a.specs if spec.partitions_def != monthly_partitions)
    )
    present = {spec.key for a in assets for spec in a.specs}

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key not in keys:
            return spec
        if spec.key == STATIONS:
            condition = materialise_when_missing()
        elif spec.group_name in NEEDS_A_CHAMPION:  # drift_report: fails until a model is promoted
            condition = drift_after_a_champion(unpartitioned, model_name)
        else:
            history = HISTORY_READERS.get(spec.key)
            condition = monthly_rematerialisation(unpartitioned, history if history and history[0] in present else None)
        return spec.replace_attributes(automation_condition=condition)

    return apply


def build_automation_sensor(assets: Sequence[dg.AssetsDefinition], settings: AutomationSettings) -> dg.SensorDefinition:
    """Evaluates the conditions above on ``assets`` (after ``automation_policy`` was applied). Explicit, so
    it is RUNNING by default (Dagster's implicit automation sensor starts stopped), and evaluated in the
    code server, which the custom BlockingChecksPassed condition needs."""
    ours = {"monthly_rematerialisation", "monthly_rematerialisation_once_a_champion_exists", "materialise_when_missing"}
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
                    "blocking checks passed, and the history readers (arrest_features, hotspots) of the months "
                    "after it; "
                    "drift_report only once a champion model exists; materialises the police stations when "
                    "they are missing.",
    )
