"""Declarative automation: when a month changes upstream, everything built from that month follows.

The policy, applied centrally (``definitions.py``) so the asset modules stay free of it:

- Every **monthly asset downstream of raw_incidents** gets ``monthly_rematerialisation``: for every month,
  not only the latest one, it is requested once when something happened to it or to a month it reads
  (a month it reads was updated or is requested in this tick, it went missing, or the condition sees
  it for the first time), provided it is then **missing or older than a month it reads**, month M of each
  monthly dependency exists, and no month it reads holds a materialisation whose **blocking checks failed**
  (``UpstreamMonthsNewer``, the one condition of our own). History months come from the graph: arrest_features
  and hotspots declare months M-12..M, so a rebuilt month brings the 12 months after it along, and missing
  history months are allowed (the first year of a warehouse is built). Never while a month it reads is in
  progress, nor while it is itself. A whole chain is requested in one tick, so one upstream change makes
  one run (or one backfill), and a run's own materialisations do not trigger it again. Updates of
  unpartitioned inputs (the stations, the champion) do not trigger it: they would rebuild 25 years of
  months; it waits while one of them is missing (drift_report until a champion exists).
- **police_stations** is materialised when it is missing (a fresh install). Refreshes come from the
  monthly schedule.
- **champion_model** follows arrest_model: materialised when arrest_model was updated (outside a run that
  already promoted it) and its promotion gate passed.
- Other assets (the model, owned by its retraining sensor) and assets whose owner set a condition are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import dagster as dg

from crime_assets.common.months import shift_month
from crime_assets.defs.common.partitions import monthly_partitions
from crime_assets.common.settings import AutomationSettings

RAW = dg.AssetKey("raw_incidents")
STATIONS = dg.AssetKey("police_stations")
CHAMPION = dg.AssetKey("champion_model")
AutomationCondition = dg.AutomationCondition


class UpstreamMonthsNewer(dg.AutomationCondition[dg.AssetKey]):
    """True for month M of a monthly asset when it can and should be built from its monthly dependencies:
    each of them holds month M; none of the months it reads (through the dependency's partition mapping:
    M, or M-12..M for a history reader; history months may be missing) has a latest materialisation whose
    blocking checks failed (ERROR; a WARN does not block, as in a run); and M is missing or older than the
    latest materialisation of one of those months. A dependency's month requested in this same tick counts
    as present, passed and newer (the run stops on its checks).

    Dagster's ``all_deps_blocking_checks_passed()`` cannot say this: it judges an unpartitioned check on a
    monthly asset by its latest execution, whatever month that was, and counts a WARN as a failure
    (crime_assets_tests/test_automation.py shows both). Read through the instance's public materialisation
    records and the check evaluations of the run that made each month's latest one (a range of months in
    one run shares one verdict per check: one failing month holds back the range, the safe side).
    """

    @property
    def name(self) -> str:
        return "upstream_months_newer_and_passed"

    @property
    def description(self) -> str:
        return ("Missing or older than a month it reads, which exist (history may be missing) and passed "
                "their blocking checks")

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        candidates = context.candidate_subset
        if candidates.is_empty:
            return dg.AutomationResult(context=context, true_subset=candidates)
        graph, view = context.asset_graph, context.asset_graph_view
        instance = view.instance
        months = sorted(candidates.expensively_compute_partition_keys())
        own = latest_materialisations(instance, context.key, months)
        ready, newer = set(months), {m for m in months if m not in own}
        deps = [k for k in graph.get(context.key).parent_entity_keys
                if isinstance(k, dg.AssetKey) and graph.get(k).partitions_def == context.partitions_def]
        for dep in deps:
            requested_subset = context.request_subsets_by_key.get(dep)
            requested = set(requested_subset.expensively_compute_partition_keys()) if requested_subset else set()
            reads = months_read(context, dep, months)
            latest = latest_materialisations(instance, dep, set().union(*reads.values()) - requested)
            passed = blocking_checks_passed(instance, [k for k in graph.get(dep).check_keys if graph.get(k).blocking],
                                            latest)
            for month in months:
                read = reads[month]
                if month not in requested and month not in latest:
                    ready.discard(month)
                if any(not passed[m] for m in read & set(latest)):
                    ready.discard(month)
                own_id = own[month].storage_id if month in own else -1
                if read & requested or any(latest[m].storage_id > own_id for m in read & set(latest)):
                    newer.add(month)
        true_subset = view.get_subset_from_partition_keys(context.key, context.partitions_def, ready & newer)
        return dg.AutomationResult(context=context, true_subset=true_subset)


def months_read(context: dg.AutomationContext, dep: dg.AssetKey, months: Sequence[str]) -> dict[str, set[str]]:
    """For each of ``months`` of the evaluated asset: the months of ``dep`` it reads, by the dependency's
    partition mapping (a window of months is shifted arithmetically: asking Dagster month by month costs
    ~5 ms a month)."""
    mapping = context.asset_graph.get_partition_mapping(context.key, dep)
    if isinstance(mapping, dg.IdentityPartitionMapping) or (
            isinstance(mapping, dg.TimeWindowPartitionMapping) and (mapping.start_offset, mapping.end_offset) == (0, 0)):
        return {m: {m} for m in months}
    if isinstance(mapping, dg.TimeWindowPartitionMapping):
        offsets = range(mapping.start_offset, mapping.end_offset + 1)
        return {m: {shift_month(m, k) for k in offsets} for m in months}
    view = context.asset_graph_view
    return {m: set(view.get_subset_from_partition_keys(context.key, context.partitions_def, [m])
                   .compute_mapped_subset(dep, direction="up").expensively_compute_partition_keys()) for m in months}


def latest_materialisations(instance: dg.DagsterInstance, key: dg.AssetKey,
                            partitions: Iterable[str]) -> dict[str, dg.EventLogRecord]:
    """The newest materialisation record of each of ``partitions`` of ``key`` that has one."""
    wanted, found, cursor = set(partitions), {}, None
    while wanted:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=sorted(wanted)), limit=1000, cursor=cursor)
        for record in page.records:
            if record.partition_key in wanted:
                found[record.partition_key] = record
                wanted.discard(record.partition_key)
        if not page.has_more:
            break
        cursor = page.cursor
    return found


def blocking_checks_passed(instance: dg.DagsterInstance, blocking: Sequence[dg.AssetCheckKey],
                           records: dict[str, dg.EventLogRecord]) -> dict[str, bool]:
    """For each partition of ``records``: did the run of that materialisation evaluate every ``blocking``
    check, none failing with ERROR severity? Asked once per run."""
    verdicts: dict[str, bool] = {}
    for run_id in {record.run_id for record in records.values()}:
        evaluations = [
            entry.event_log_entry.dagster_event.asset_check_evaluation_data
            for entry in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
        ] if run_id and blocking else []
        verdicts[run_id] = all(
            any(e.asset_check_key == check for e in evaluations)
            and not any(e.asset_check_key == check and not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
                        for e in evaluations)
            for check in blocking)
    return {partition: verdicts[record.run_id] for partition, record in records.items()}


def monthly_rematerialisation(unpartitioned_inputs: dg.AssetSelection) -> dg.AutomationCondition:
    """Dagster's ``eager()`` building blocks for every month of a monthly asset, with ``UpstreamMonthsNewer``
    deciding whether the month is due. Changes of ``unpartitioned_inputs`` do not trigger it; it waits
    while one of them is missing."""
    due = UpstreamMonthsNewer()
    # Not any_deps_updated(): it ignores an update made by a run that also targeted this asset, whatever
    # months that run built, so a run of March would not reach the history readers of April. A run's own
    # updates are handled below instead: a month updated after what it reads is no longer due.
    upstream_changed = AutomationCondition.any_deps_match(
        AutomationCondition.newly_updated() | AutomationCondition.will_be_requested()
    ).ignore(unpartitioned_inputs).with_label("any_monthly_deps_updated")
    # Requested or updated; an update that left the month due (a month it reads changed after it) is not.
    handled = (AutomationCondition.newly_requested() | (AutomationCondition.newly_updated() & ~due)).with_label("handled")
    # First sight counts as a change: months built before the automation ran, or while it was off, get
    # requested once if they are due (a missing month, or one older than its upstream). A change that
    # leaves the month not due (a month it reads is missing or failed) is dropped: the fix upstream is a
    # change of its own. Only months due when they changed wait for the rest below (an input, a run).
    changed = (
        (AutomationCondition.initial_evaluation() | AutomationCondition.newly_missing() | upstream_changed) & due
    ).with_label("changed_and_due")
    return (
        changed.since(handled).with_label("changed_since_last_handled")
        # An unpartitioned input requested in this same tick would run in a separate run, maybe later:
        # wait until it exists.
        & ~AutomationCondition.any_deps_match(AutomationCondition.missing())
        .allow(unpartitioned_inputs).with_label("unpartitioned_input_missing")
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
        & due
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


def promote_when_cleared() -> dg.AutomationCondition:
    """``eager()`` for the unpartitioned champion_model, once its dependency's blocking checks (the promotion
    gate) passed: judged by their latest execution, which for an unpartitioned asset is the right one."""
    return (AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()).with_label(
        "promote_when_cleared")


def automated_keys(assets: Sequence[dg.AssetsDefinition]) -> set[dg.AssetKey]:
    """The keys this module sets conditions on: monthly assets downstream of raw_incidents (drift_report
    included), the stations and the champion, unless their owner already gave them a condition."""
    downstream = dg.AssetSelection.assets(RAW).downstream(include_self=False).resolve(assets)
    chosen = set()
    for assets_def in assets:
        for spec in assets_def.specs:
            if spec.automation_condition is not None:
                continue
            if spec.key in (STATIONS, CHAMPION) or (spec.key in downstream and spec.partitions_def == monthly_partitions):
                chosen.add(spec.key)
    return chosen


def automation_policy(assets: Sequence[dg.AssetsDefinition]) -> Callable[[dg.AssetSpec], dg.AssetSpec]:
    """The spec -> spec function for ``dg.map_asset_specs`` that applies the policy above to ``assets``."""
    keys = automated_keys(assets)
    unpartitioned = dg.AssetSelection.assets(
        *(spec.key for a in assets for spec in a.specs if spec.partitions_def != monthly_partitions)
    )

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key not in keys:
            return spec
        if spec.key == STATIONS:
            condition = materialise_when_missing()
        elif spec.key == CHAMPION:
            condition = promote_when_cleared()
        else:
            condition = monthly_rematerialisation(unpartitioned)
        return spec.replace_attributes(automation_condition=condition)

    return apply


def build_automation_sensor(assets: Sequence[dg.AssetsDefinition], settings: AutomationSettings) -> dg.SensorDefinition:
    """Evaluates the conditions above on ``assets`` (after ``automation_policy`` was applied). Explicit, so
    it is RUNNING by default (Dagster's implicit automation sensor starts stopped), and evaluated in the
    code server, which the custom UpstreamMonthsNewer condition needs."""
    ours = {"monthly_rematerialisation", "materialise_when_missing", "promote_when_cleared"}
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
        description="Builds each month of the monthly assets downstream of raw_incidents once when a month it "
                    "reads changed (or was never followed), from upstream months whose blocking checks passed; "
                    "drift_report once a champion exists; the police stations when they are missing; "
                    "champion_model after arrest_model cleared its promotion gate.",
    )
