"""retrain_on_drift_sensor: requests a new arrest_model when a drift_report says the champion has drifted.

drift_report lists, in its ``retrain_requests`` metadata, the months whose feature, score or target drift
or quality drop passed a threshold, with the causes. The sensor reads the materialisations it has not
seen (cursor: the last event's storage id) and requests one training of arrest_model for the (month,
cause) pairs it has not requested before (cursor: those pairs; run key ``retrain:<month>:<causes>``), so a
re-run of the same month with the same finding, or another tick, requests nothing more. The run trains
arrest_model and materialises champion_model: the blocking promotion gate between them lets the new
version become champion only if it clears it.
"""

from __future__ import annotations

import json

import dagster as dg

from crime_assets.defs.monitoring.drift_assets import retrain_requests

DRIFT_REPORT = dg.AssetKey("drift_report")
ARREST_MODEL = dg.AssetKey("arrest_model")
CHAMPION_MODEL = dg.AssetKey("champion_model")
KEEP_MONTHS = 60  # months of handled causes kept in the cursor


def build_retrain_sensor(interval_s: int = 60) -> dg.SensorDefinition:
    @dg.sensor(
        name="retrain_on_drift_sensor",
        target=dg.AssetSelection.assets(ARREST_MODEL, CHAMPION_MODEL),  # with the promotion gate between them
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests a training of arrest_model and its promotion to champion_model (through the "
                    "promotion gate) when a drift_report "
                    "materialisation finds drift or a quality drop beyond its thresholds; once per month and cause.",
    )
    def retrain_on_drift_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        state = json.loads(context.cursor) if context.cursor else {}
        after, handled = state.get("after"), {m: set(c) for m, c in state.get("handled", {}).items()}
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=DRIFT_REPORT, after_storage_id=after), limit=1000, ascending=True).records
        new: dict[str, list[str]] = {}
        for record in records:
            after = record.storage_id
            for month, causes in retrain_requests(record.asset_materialization.metadata).items():
                fresh = [c for c in causes if c not in handled.get(month, set()) and c not in new.get(month, [])]
                if fresh:
                    new.setdefault(month, []).extend(fresh)
        for month, causes in new.items():
            handled.setdefault(month, set()).update(causes)
        kept = sorted(handled)[-KEEP_MONTHS:]
        cursor = json.dumps({"after": after, "handled": {m: sorted(handled[m]) for m in kept}}, sort_keys=True)
        if not new:
            return dg.SensorResult(skip_reason=f"no new drift finding in {len(records)} drift_report event(s)",
                                   cursor=cursor)
        # One training answers every finding of the tick: it trains on the newest months anyway.
        month = max(new)
        causes = sorted(set(new[month]))
        context.log.info("requesting a retrain of arrest_model: %s", json.dumps(new, sort_keys=True))
        return dg.SensorResult(
            run_requests=[dg.RunRequest(
                run_key=f"retrain:{month}:{'+'.join(causes)}",
                tags={"crime/trigger": "retrain_on_drift_sensor", "crime/drift_month": month,
                      "crime/drift_causes": ",".join(causes),
                      "crime/drift_findings": json.dumps(new, sort_keys=True)[:200]},
            )],
            cursor=cursor,
        )

    return retrain_on_drift_sensor
