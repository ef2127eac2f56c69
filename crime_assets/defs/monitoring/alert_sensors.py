"""The alert sensor: every failed asset check and every failed run becomes exactly one alert.

Why a sensor over finished runs rather than a run-failure sensor: a failed check that does not block
(WARN, or a freshness check) leaves its run successful, so a run-failure sensor never sees it.

One tick:
1. reads the runs that ended (succeeded, failed or were cancelled) after the cursor, through the
   instance's run status changes, one position per kind of ending;
2. reads the check evaluations and failures of those runs, and of the runs whose alerts a destination
   has not accepted yet, and turns each failed check (ERROR always, WARN when configured) and each
   failed run into one ``Alert`` with a fixed id (run id + storage id, or the run id);
3. delivers each alert to every destination that has not accepted it (``core.alerts.deliver``, which
   records every accepted delivery), then stores the cursor: the positions read and the runs with
   alerts still owed, read again on the next tick.
Reading again is harmless: an alert a destination accepted is not sent to it twice, so a tick that
died before its cursor was stored, or a lost cursor, repeats nothing.

A run that failed only because blocking checks failed is not alerted a second time: the checks' own
alerts name the run. Any other failed step (a source that is down, a bug) gives a run alert. Checks
reported from outside any run (through the REST API) are not read: Dagster has no public query for
them across runs, and this project evaluates every check inside a run.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Mapping

import dagster as dg
from dagster import DagsterEventType

from crime_assets.monitoring.alerts import (
    CHECK_FAILED, ERROR, RUN_FAILED, Alert, asset_checks_url, deliver, run_url,
)
from crime_assets.defs.monitoring.alert_resources import AlertDestinations

ALERT_SENSOR_NAME = "check_failure_alert_sensor"
ENDINGS = (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED)
RUN_EVENTS = {DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}
RUNS_PER_TICK = 200        # per kind of ending; the rest waits for the next tick, so a tick stays short
BLOCKING_CHECK_FAILED = "DagsterAssetCheckFailedError"
_WRAPPERS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"}
FRESHNESS_PARAMS = "dagster/freshness_params"  # metadata of Dagster's freshness checks
_PARTITION_IN_TEXT = re.compile(r"expect(?:ed)? partition (\S+) to have arrived")  # Dagster's freshness checks
_FOUND_MAX = 500


def _plain(metadata: Mapping[str, dg.MetadataValue]) -> dict:
    """Metadata values as JSON-ready Python values."""
    values = {}
    for key, value in metadata.items():
        raw = value.value if isinstance(value, dg.MetadataValue) else value
        values[key] = raw if isinstance(raw, (str, int, float, bool, list, dict, type(None))) else str(raw)
    return values


def _clip(text: str, limit: int = _FOUND_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _run_partitions(run: dg.DagsterRun) -> str | None:
    tags = run.tags
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}...{end}"
    return tags.get("dagster/partition")


def check_alert(record: dg.EventLogRecord, run: dg.DagsterRun, alerts: AlertDestinations) -> Alert | None:
    evaluation = record.event_log_entry.asset_check_evaluation
    if evaluation is None or evaluation.passed:
        return None
    severity = evaluation.severity.value
    if not alerts.alerts_on(severity, evaluation.check_name):
        return None
    metadata = _plain(evaluation.metadata)
    description = evaluation.description or str(metadata.get("summary") or "the check did not pass")
    # The gates' "details" carry the figures (ratio, shares, offending months); empty ones say nothing.
    details = metadata.get("details")
    figures = {k: v for k, v in details.items() if v not in ({}, [], None, 0)} if isinstance(details, dict) else {}
    found = description + (f" {json.dumps(figures, sort_keys=True, default=str)}" if figures else "")
    asset = evaluation.asset_key.to_user_string()
    late = _PARTITION_IN_TEXT.search(description) if FRESHNESS_PARAMS in metadata else None
    # A freshness check fails again in every run that touches the asset (a backfill of old months, the
    # sensor's re-checks) while the month is late: that is one failure, "month M of asset A is late".
    alert_id = f"freshness:{asset}:{late.group(1)}" if late else f"check:{run.run_id}:{record.storage_id}"
    return Alert(
        id=alert_id,
        kind=CHECK_FAILED,
        severity=severity,
        asset=asset,
        partitions=(evaluation.partition or (str(metadata["months"]) if metadata.get("months") else None)
                    or (late.group(1) if late else None) or _run_partitions(run)),
        check=evaluation.check_name,
        found=_clip(found),
        run_id=run.run_id,
        job=run.job_name,
        occurred_at=record.timestamp,
        run_url=run_url(alerts.ui_base_url, run.run_id),
        asset_url=asset_checks_url(alerts.ui_base_url, asset),
        details=metadata,
    )


def _root_error(error):
    while error is not None and error.cls_name in _WRAPPERS and error.cause is not None:
        error = error.cause
    return error


def _first_line(error) -> str:
    lines = (error.message or "").strip().splitlines()
    return lines[0] if lines else error.cls_name or "unknown error"


def run_alert(entry: dg.EventLogEntry, step_failures: list[dg.EventLogEntry], run: dg.DagsterRun,
              alerts: AlertDestinations) -> Alert | None:
    failure = entry.dagster_event.job_failure_data
    step_errors = {e.step_key: _root_error(e.dagster_event.step_failure_data.error)
                   for e in step_failures if e.dagster_event.step_failure_data}
    run_error = _root_error(failure.error) if failure else None
    causes = [e for e in step_errors.values() if e is not None] or ([run_error] if run_error else [])
    if causes and all(e.cls_name == BLOCKING_CHECK_FAILED for e in causes):
        return None  # the failed checks have their own alerts, which name this run
    if step_errors:
        found = "; ".join(f"step {step} failed: {_first_line(e) if e else 'unknown error'}"
                          for step, e in sorted(step_errors.items()))
        assets = ", ".join(sorted(step_errors))
    else:
        found = _first_line(run_error) if run_error else (entry.user_message or "the run failed")
        assets = ", ".join(sorted(k.to_user_string() for k in (run.asset_selection or [])))
    return Alert(
        id=f"run:{run.run_id}",
        kind=RUN_FAILED,
        severity=ERROR,
        asset=assets or None,
        partitions=_run_partitions(run),
        check=None,
        found=_clip(found),
        run_id=run.run_id,
        job=run.job_name,
        occurred_at=entry.timestamp,
        run_url=run_url(alerts.ui_base_url, run.run_id),
        details={"failure_reason": failure.failure_reason.value if failure and failure.failure_reason else None,
                 "failed_steps": sorted(step_errors)},
    )


def run_alerts(instance: dg.DagsterInstance, run_id: str, alerts: AlertDestinations) -> list[Alert]:
    """The alerts of one finished run: its failed checks and, unless only blocking checks failed, the run."""
    run = instance.get_run_by_id(run_id)
    if run is None:  # deleted since it ended
        return []
    records = defaultdict(list)
    for record in instance.get_records_for_run(run_id, of_type=RUN_EVENTS).records:
        records[record.event_log_entry.dagster_event_type].append(record)
    steps = [r.event_log_entry for r in records[DagsterEventType.STEP_FAILURE]]
    found = [check_alert(r, run, alerts) for r in records[DagsterEventType.ASSET_CHECK_EVALUATION]]
    found += [run_alert(r.event_log_entry, steps, run, alerts) for r in records[DagsterEventType.RUN_FAILURE]]
    return [alert for alert in found if alert is not None]


def ended_runs(instance: dg.DagsterInstance, cursor: Mapping[str, str], not_before: float
               ) -> tuple[list[str], dict[str, str]]:
    """The runs that ended after the cursor's positions and ``not_before``, oldest first; the new positions."""
    records, positions = [], {}
    for ending in ENDINGS:
        result = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(ending, after_timestamp=not_before), limit=RUNS_PER_TICK,
            cursor=cursor.get(ending.name), ascending=True)
        records += result.records
        positions[ending.name] = result.cursor
    return [r.run_id for r in sorted(records, key=lambda r: r.timestamp)], positions


def build_alert_sensor(minimum_interval_seconds: int = 30) -> dg.SensorDefinition:
    @dg.sensor(
        name=ALERT_SENSOR_NAME,
        minimum_interval_seconds=minimum_interval_seconds,
        # Alerts work as soon as the daemon runs; nobody has to remember to switch them on.
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Raises an alert for every failed asset check (ERROR; WARN where configured) and every "
                    "failed run: to the JSON-lines log in <data_dir>/alerts, the webhook and e-mail when "
                    "configured. Retries destinations that were down on later ticks.",
    )
    def check_failure_alert_sensor(context: dg.SensorEvaluationContext, alerts: AlertDestinations) -> dg.SkipReason:
        cursor = json.loads(context.cursor or "{}")
        if "retry" not in cursor:  # none yet, or the outbox version's (other positions): start afresh
            cursor = {}
        # Turning the sensor on must not page anyone about last year: the first tick fixes how far back it reads.
        not_before = cursor.get("not_before", time.time() - alerts.first_tick_lookback_hours * 3600)
        ended, positions = ended_runs(context.instance, cursor, not_before)
        secrets = alerts.secrets()
        found = [alert.redacted(secrets) for run_id in dict.fromkeys([*cursor.get("retry", []), *ended])
                 for alert in run_alerts(context.instance, run_id, alerts)]
        report = deliver(sorted(found, key=lambda a: a.occurred_at), alerts.destinations(), alerts.ledger_path)
        retry = sorted({alert.run_id for alert, _ in report.pending})
        context.update_cursor(json.dumps({"not_before": not_before, **positions, "retry": retry}, sort_keys=True))
        summary = f"{len(ended)} run(s) ended, {len(found)} alert(s); {report.summary()}"
        context.log.info(summary)
        return dg.SkipReason(summary)

    return check_failure_alert_sensor
