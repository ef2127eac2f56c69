"""drift_report: each month of arrest_features against the champion's training months, with Evidently.

Thin wiring around ``crime_assets.monitoring.drift``. It depends on champion_model, the asset whose
materialisation promotes a version: the champion is read from the MLflow registry (alias ``champion``),
not from arrest_model's latest materialisation (that is the challenger, promoted or not).
"""


import base64
import json
import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from crime_assets.model.features import incident_rows
from crime_assets.monitoring import drift
from crime_assets.monitoring.drift import DRIFT_COLUMNS, DRIFT_TABLE, DriftThresholds
from crime_assets.defs.common.metadata import column_schema, markdown_table, window_of
from crime_assets.defs.model.resources import MlflowStore
from crime_assets.defs.common.partitions import monthly_warehouse_asset
from crime_assets.defs.common.warehouse_resource import Warehouse

ENOUGH_ROWS = "month_has_enough_rows"
WITHIN_THRESHOLDS = "drift_within_thresholds"


class DriftReportConfig(dg.Config, DriftThresholds):
    """Thresholds of the drift gates (Launchpad, or `--config`), and the reference sample."""

    reference_rows: int = Field(default=20_000, description="sample of the champion's training months compared against")


def report_path(data_dir: str | Path, month: str) -> Path:
    return Path(data_dir) / "reports" / "drift" / f"{month}.html"


def load_champion(mlflow: MlflowStore):
    from crime_assets.model.model_registry import CHAMPION, load_registered

    try:
        return load_registered(mlflow.tracking_uri, mlflow.model_name, alias=CHAMPION)
    except LookupError as error:
        raise RuntimeError(
            f"drift_report needs a champion of '{mlflow.model_name}' to judge against, and there is none: "
            f"materialize arrest_model and champion_model first (a version that clears the promotion gate "
            f"becomes the champion). {error}") from None


@monthly_warehouse_asset(
    group_name="monitoring",
    kinds={"evidently", "duckdb"},
    deps=["arrest_features", "champion_model"],
    metadata={"dagster/column_schema": column_schema(DRIFT_COLUMNS), "dagster/table_name": f"warehouse.{DRIFT_TABLE}",
              "partition_expr": "month"},
    check_specs=[
        dg.AssetCheckSpec(ENOUGH_ROWS, asset="drift_report",
                          description="The month has enough incidents for its drift to be judged (ERROR when not)."),
        dg.AssetCheckSpec(WITHIN_THRESHOLDS, asset="drift_report",
                          description="No feature, score or target drift and no quality drop beyond the thresholds "
                                      "(WARN: the retrain sensor requests a new arrest_model)."),
    ],
)
def drift_report(context: dg.AssetExecutionContext, config: DriftReportConfig, warehouse: Warehouse,
                 mlflow: MlflowStore) -> dg.MaterializeResult:
    """A monthly Evidently drift report of arrest_features and the champion's scores against its training.

    Compares the month's arrest_features with a sample of the current champion's training months: drift of
    every model feature, of the champion's predicted scores (and their PSI), of the arrest rate
    (two-proportion test), and the champion's ROC AUC and MCC on the month against its own test figures.
    The HTML report goes to <data dir>/reports/drift/<month>.html; the figures to the warehouse table
    drift_metrics (month, metric, value). The champion comes from the MLflow registry."""
    started = time.perf_counter()
    window = window_of(context)
    model = load_champion(mlflow)
    train_months = list(model.info.get("train_months") or [])
    with warehouse.connect() as con:  # read-write, as every asset: DuckDB refuses mixed modes in one process
        reference = drift.read_reference(con, train_months, config.reference_rows)
        months = {m: (drift.read_month(con, m), incident_rows(con, m, m)) for m in window.keys}
    run = drift.judge_months(model, reference, months, config, lambda m: report_path(warehouse.data_dir, m),
                             log=context.log.info)
    with warehouse.connect() as con:
        for month, summary in run.summaries.items():
            drift.write_metrics(con, month, summary.metrics() if summary else {"rows": run.rows[month]})
        trend = drift.read_trend(con, window.keys[-1])
    chart = Path(warehouse.data_dir) / "reports" / "drift" / "trend.png"
    chart.parent.mkdir(parents=True, exist_ok=True)
    drift.trend_figure(trend).savefig(chart)

    thin, flagged, judged = run.thin(), run.flagged(), run.judged()
    checks = [
        dg.AssetCheckResult(
            check_name=ENOUGH_ROWS, passed=not thin, severity=dg.AssetCheckSeverity.ERROR,
            description=(f"too few rows to judge (minimum {config.min_rows}): "
                         + ", ".join(f"{m} ({n})" for m, n in thin.items())) if thin else "every month judged",
            metadata={"months": window.label, "min_rows": config.min_rows,
                      "rows_by_month": dg.MetadataValue.json(run.rows)}),
        dg.AssetCheckResult(
            check_name=WITHIN_THRESHOLDS, passed=not flagged, severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(f"{m}: {', '.join(c)}" for m, c in flagged.items()) if flagged
            else "no drift or quality drop beyond the thresholds" + (" (months not judged: " + ", ".join(thin) + ")"
                                                                    if thin else ""),
            metadata={"months": window.label, "thresholds": dg.MetadataValue.json(config.values())}),
    ]
    metadata = {
        "champion": f"{model.info.get('name')} v{model.info.get('version')}",
        "reference_months": f"{train_months[0]}...{train_months[-1]}" if train_months else "none",
        "reference_rows": len(reference),
        "months": window.label,
        # Read by retrain_on_drift_sensor: the months whose drift calls for a new model, and why.
        "retrain_requests": dg.MetadataValue.json(run.retrain),
        "seconds": round(time.perf_counter() - started, 1),
        "trend_chart_path": dg.MetadataValue.path(str(chart)),
        "trend": dg.MetadataValue.md(
            f"![drift trend](data:image/png;base64,{base64.b64encode(chart.read_bytes()).decode()})"),
        "by_month": markdown_table(*run.by_month()),
    }
    if len(window.keys) == 1 and judged:
        (month, summary), = judged.items()
        metadata |= {"report_path": dg.MetadataValue.path(str(report_path(warehouse.data_dir, month))),
                     **drift.month_figures(summary), "summary": dg.MetadataValue.json(summary.to_dict())}
    elif judged:
        metadata["report_paths"] = dg.MetadataValue.json({m: str(report_path(warehouse.data_dir, m)) for m in judged})
    return dg.MaterializeResult(metadata={k: v for k, v in metadata.items() if v is not None}, check_results=checks)


def retrain_requests(metadata: dict) -> dict[str, list[str]]:
    """The ``retrain_requests`` of a drift_report materialisation's metadata ({} when absent)."""
    value = metadata.get("retrain_requests")
    data = getattr(value, "data", value)
    if isinstance(data, str):
        data = json.loads(data)
    return {str(m): list(c) for m, c in (data or {}).items()}
