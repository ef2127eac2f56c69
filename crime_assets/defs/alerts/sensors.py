"""The alert sensor: every failed asset check and every failed run becomes exactly one alert.

Why a sensor over the event log rather than a run-failure sensor: a failed check that does not block
(WARN, or a freshness check) leaves its run successful, so a run-failure sensor never sees it.

One tick:
1. reads ASSET_CHECK_EVALUATION and RUN_FAILURE events after the cursor (one storage id per event
   type, from the cross-run event index that SQLite and PostgreSQL instances both keep);
2. turns each failed check (ERROR always, WARN when configured) and each failed run into one ``Alert``
   whose id is derived from the event (run id + storage id) or the run (run id);
3. stores them in the outbox (an alert id already there is ignored), and only then moves the cursor;
4. delivers everything the outbox still owes any destination (this tick's alerts and earlier ones whose
   destination was down).

A run that failed only because blocking checks failed is not alerted a second time: the checks' own
alerts name the run. Any other failed step (a source that is down, a bug) gives a run alert.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping

import dagster as dg
from dagster import DagsterEventType

from crime_assets.core.alerts import (
    CHECK_FAILED, ERROR, RUN_FAILED, Alert, asset_checks_url, run_url,
)
from crime_assets.defs.alerts.resources import AlertDestinations

ALERT_SENSOR_NAME = "check_failure_alert_sensor"
WATCHED = (DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.RUN_FAILURE)
PAGE_SIZE = 500            # events read per query
MAX_PAGES_PER_TICK = 20    # the rest waits for the next tick, so a tick stays short
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


def _run_partitions(run: dg.DagsterRun | None) -> str | None:
    if run is None:
        return None
    tags = run.tags
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}...{end}"
    return tags.get("dagster/partition")


def check_alert(storage_id: int, entry: dg.EventLogEntry, instance: dg.DagsterInstance,
                alerts: AlertDestinations) -> Alert | None:
    evaluation = entry.asset_check_evaluation
    if evaluation is None or evaluation.passed:
        return None
    severity = evaluation.severity.value
    if not alerts.alerts_on(severity, evaluation.check_name):
        return None
    run = instance.get_run_by_id(entry.run_id) if entry.run_id else None
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
    alert_id = (f"freshness:{asset}:{late.group(1)}" if late
                else f"check:{entry.run_id or 'runless'}:{storage_id}")
    return Alert(
        id=alert_id,
        kind=CHECK_FAILED,
        severity=severity,
        asset=asset,
        partitions=(evaluation.partition or (str(metadata["months"]) if metadata.get("months") else None)
                    or (late.group(1) if late else None) or _run_partitions(run)),
        check=evaluation.check_name,
        found=_clip(found),
        run_id=entry.run_id,
        job=run.job_name if run else None,
        occurred_at=entry.timestamp,
        # A check reported from outside a run (through the API) has no run to link to.
        run_url=run_url(alerts.ui_base_url, entry.run_id) if entry.run_id else asset_checks_url(alerts.ui_base_url, asset),
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


def run_alert(entry: dg.EventLogEntry, instance: dg.DagsterInstance, alerts: AlertDestinations) -> Alert | None:
    run = instance.get_run_by_id(entry.run_id)
    failure = entry.dagster_event.job_failure_data
    step_errors = {
        e.step_key: _root_error(e.dagster_event.step_failure_data.error)
        for e in instance.all_logs(entry.run_id, of_type=DagsterEventType.STEP_FAILURE)
        if e.dagster_event and e.dagster_event.step_failure_data
    }
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
        assets = ", ".join(sorted(k.to_user_string() for k in (run.asset_selection or []))) if run else None
    return Alert(
        id=f"run:{entry.run_id}",
        kind=RUN_FAILED,
        severity=ERROR,
        asset=assets or None,
        partitions=_run_partitions(run),
        check=None,
        found=_clip(found),
        run_id=entry.run_id,
        job=run.job_name if run else None,
        occurred_at=entry.timestamp,
        run_url=run_url(alerts.ui_base_url, entry.run_id),
        details={"failure_reason": failure.failure_reason.value if failure and failure.failure_reason else None,
                 "failed_steps": sorted(step_errors)},
    )


def read_failures(instance: dg.DagsterInstance, cursor: Mapping[str, float] | None, alerts: AlertDestinations,
                  now: float) -> tuple[list[Alert], dict[str, float]]:
    """The alerts for events after ``cursor``, and the cursor after them.

    The cursor holds the last storage id read per event type, and ``not_before``: on its very first tick
    the sensor reads the whole log but alerts only on failures newer than ``first_tick_lookback_hours``
    (turning the sensor on must not page anyone about last year), also when that history takes several
    ticks to read.
    """
    new_cursor = dict(cursor or {})
    new_cursor.setdefault("not_before", now - alerts.first_tick_lookback_hours * 3600)
    found: list[Alert] = []
    for event_type in WATCHED:
        for _ in range(MAX_PAGES_PER_TICK):
            # Per event type: the storage's own event-log consumer (auto re-execution) reads it the same way.
            entries = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
                after_cursor=new_cursor.get(event_type.name, -1), dagster_event_type={event_type}, limit=PAGE_SIZE)
            for storage_id in sorted(entries):
                entry = entries[storage_id]
                if entry.timestamp >= new_cursor["not_before"]:
                    alert = (check_alert(storage_id, entry, instance, alerts)
                             if event_type == DagsterEventType.ASSET_CHECK_EVALUATION
                             else run_alert(entry, instance, alerts))
                    if alert is not None:
                        found.append(alert)
                new_cursor[event_type.name] = storage_id
            if len(entries) < PAGE_SIZE:
                break
    return sorted(found, key=lambda a: a.occurred_at), new_cursor


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
        cursor = json.loads(context.cursor) if context.cursor else None
        found, new_cursor = read_failures(context.instance, cursor, alerts, time.time())
        destinations = alerts.destinations()
        outbox = alerts.outbox()
        secrets = alerts.secrets()
        added = outbox.enqueue([a.redacted(secrets) for a in found], [d.name for d in destinations])
        # Only now: an alert is stored before the events it came from are behind the cursor.
        context.update_cursor(json.dumps(new_cursor, sort_keys=True))
        report = outbox.deliver(destinations)
        summary = f"{added} new alert(s); {report.summary()}"
        context.log.info(summary)
        return dg.SkipReason(summary)

    return check_failure_alert_sensor
