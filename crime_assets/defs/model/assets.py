"""The arrest model's assets: the monthly feature table, the trained and registered model (the challenger),
its promotion gate, the champion, and the backtest.

Thin wiring around the plain modules of this folder (features, training, metrics, model_registry). XGBoost and
MLflow are imported inside the functions that use them, so loading the code location stays quick.
The model assets read the warehouse up front and release it before training; they run in the
warehouse pool like every asset that opens the DuckDB file.
"""


import base64
import time
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from crime_assets.model.feature_history import HISTORY_MONTHS, fit_history, history_months
from crime_assets.model.params import PromotionFloors, TrainingParams
from crime_assets.model.backtest import BACKTEST_COLUMNS, BACKTEST_TABLE, plan_folds, run_backtest, write_backtest
from crime_assets.model.features import (
    ARREST_FEATURES, FEATURES_TABLE, FEATURES_VERSION, incident_rows, read_features, report_clock,
    write_arrest_features,
)
from crime_assets.defs.common.metadata import column_schema, markdown_table, window_of
from crime_assets.defs.model.resources import MlflowStore
from crime_assets.defs.common.partitions import month_and_history, monthly_warehouse_asset
from crime_assets.defs.common.warehouse_resource import WAREHOUSE_POOL, Warehouse

# Month M's rows come from month M of incidents_enriched, its history features from months M-12..M-1 as they
# are when M is built -- "as of" semantics, recorded per row in history_first_month / history_last_month. One
# dependency declares both (an asset has one dependency per upstream asset): months M-12..M. History months
# that were never loaded are allowed (the first year of a warehouse has less history, no error); the
# automation (defs/automation/conditions.py) waits for month M itself, and rebuilds M when a month of its
# window is rebuilt.

FEATURE_CHECKS = {
    "rows_match_incidents": "Every incident of the months has exactly one feature row, and no other row exists.",
    "history_precedes_month": "Every row's history ends before its own month (no same-month or later arrests).",
}


@monthly_warehouse_asset(
    group_name="model",
    kinds={"duckdb", "python"},
    deps=[dg.AssetDep("incidents_enriched", partition_mapping=month_and_history(HISTORY_MONTHS))],
    code_version=FEATURES_VERSION,
    metadata={"dagster/column_schema": column_schema(ARREST_FEATURES),
              "dagster/table_name": f"warehouse.{FEATURES_TABLE}", "partition_expr": "month",
              "history_months": HISTORY_MONTHS},
    check_specs=[dg.AssetCheckSpec(name, asset="arrest_features", blocking=True, description=text)
                 for name, text in FEATURE_CHECKS.items()],
)
def arrest_features(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One model-ready row per incident of each month, from that month and the 12 months before it.

    Categorical fields, time and place, how precisely the time was recorded, how late it was reported (its
    record id and case number against those of incidents that occurred in the same 3-hour slot), and arrest
    rates of its type in its beat, H3 cells and block over the 12 months before -- never its own or later
    months' arrests, never updated_on. Depends on the same month of incidents_enriched and on the 12 months
    before it, read from the warehouse as they are when the month is built (history_first_month /
    history_last_month say which; months never loaded count as no history)."""
    window = window_of(context)
    with warehouse.connect() as con:
        stats = write_arrest_features(con, window)
        bounds = window.bounds
        counts = con.execute(f"""
            SELECT count(*) FILTER (WHERE f.id IS NULL) AS missing, count(*) FILTER (WHERE e.id IS NULL) AS extra
            FROM (SELECT id FROM incidents_enriched WHERE month BETWEEN $first AND $last) e
            FULL JOIN (SELECT id FROM {FEATURES_TABLE} WHERE month BETWEEN $first AND $last) f USING (id)""",
            bounds).fetchone()
        late = con.execute(f"""SELECT count(*) FROM {FEATURES_TABLE} WHERE month BETWEEN $first AND $last
            AND history_last_month IS NOT NULL AND history_last_month >= month""", bounds).fetchone()[0]
    missing, extra = counts
    checks = [
        dg.AssetCheckResult(check_name="rows_match_incidents", passed=missing == 0 and extra == 0,
                            metadata={"incidents_without_row": missing, "rows_without_incident": extra}),
        dg.AssetCheckResult(check_name="history_precedes_month", passed=late == 0,
                            metadata={"rows_with_late_history": late}),
    ]
    no_history = [m for m, h in stats.history_by_month.items() if h == "none"]
    return dg.MaterializeResult(check_results=checks, metadata={
        "dagster/row_count": stats.rows,
        "months": window.label,
        "months_without_history": ", ".join(no_history) or "none",
        "seconds": round(stats.seconds, 1),
        "rows_by_month": markdown_table(
            ["month", "rows", "arrest rate (label)", "history months"],
            [(m, stats.rows_by_month[m], f"{stats.arrest_rate_by_month[m]:.3f}", stats.history_by_month[m])
             for m in window.keys]),
    })


# ----------------------------------------------------------------------------------------- the model


class ArrestModelConfig(dg.Config, TrainingParams):
    """Launch-time choices of a training run (Launchpad, or `--config` on the CLI); XGBoost's are TrainingParams."""

    end_month: Optional[str] = Field(default=None, description="last test month (YYYY-MM); default: the newest "
                                                               "month in arrest_features")
    window_months: int = Field(default=12, description="training months, just before the validation months")
    validation_months: int = Field(default=1, description="months for early stopping and the decision threshold")
    test_months: int = Field(default=1, description="months after validation for the reported figures")
    model_name: Optional[str] = Field(default=None, description="registered model name; default ARREST_MODEL_NAME")
    train_baseline: bool = Field(default=False, description="also fit the plain raw-categorical XGBoost baseline "
                                                            "on the same split and log its metrics")


def _available_months(con) -> list[str]:
    exists = con.execute(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{FEATURES_TABLE}'").fetchone()[0]
    if not exists:
        return []
    return [r[0] for r in con.execute(f"SELECT DISTINCT month FROM {FEATURES_TABLE} ORDER BY 1").fetchall()]


def _training_inputs(con, plan):
    """Everything a training run reads from the warehouse, read at once (the lock is released before fitting)."""
    history = history_months(plan.validation[0])  # the 12 months up to the end of training
    return {
        "train_rows": read_features(con, list(plan.train)),
        "validation_incidents": incident_rows(con, plan.validation[0], plan.validation[-1]),
        "test_incidents": incident_rows(con, plan.test[0], plan.test[-1]),
        "history": fit_history(con, history[0], history[-1]),
        "clock": report_clock(con, plan.train[0], plan.train[-1]),
        "stations": con.execute("SELECT * FROM police_stations").df(),
    }


def _plan(config, available: list[str]):
    from crime_assets.model.training import SplitPlan

    if not available:
        raise RuntimeError(f"table {FEATURES_TABLE} is empty: materialise arrest_features first")
    plan = SplitPlan.ending(config.end_month or available[-1], config.window_months, config.validation_months,
                            config.test_months)
    plan.check_available(available, FEATURES_TABLE)
    return plan


@dg.asset(
    group_name="model",
    kinds={"xgboost", "mlflow"},
    pool=WAREHOUSE_POOL,
    deps=[arrest_features, "incidents_enriched", "police_stations"],
    io_manager_key="arrest_model_io_manager",
    metadata={"value": "ArrestModel (crime_assets.model.arrest_model); stored in the MLflow registry, "
                       "loaded back by the arrest_model_io_manager"},
)
def arrest_model(context: dg.AssetExecutionContext, config: ArrestModelConfig, warehouse: Warehouse,
                 mlflow: MlflowStore) -> dg.Output:
    """An XGBoost classifier of whether an incident leads to an arrest, registered in MLflow.

    Trained on a rolling window of complete months of arrest_features, stopped early and thresholded (max
    MCC) on the following validation month(s), judged on the month(s) after those. Every training is an
    MLflow run (params, metrics, ROC / PR / calibration / importance pictures, model card) that ends
    FINISHED or FAILED; the model is registered with a signature and an input example, and the new version
    gets the alias `challenger`. The value is the model itself: it scores raw incident records with no
    access to the warehouse."""
    from crime_assets.model.model_registry import input_example, log_training, tracked_run
    from crime_assets.model.training import train_arrest_model, train_baseline

    started = time.perf_counter()
    with warehouse.connect() as con:
        plan = _plan(config, _available_months(con))
        inputs = _training_inputs(con, plan)
        baseline_rows = incident_rows(con, plan.train[0], plan.train[-1]) if config.train_baseline else None
    read_seconds = time.perf_counter() - started
    name = config.model_name or mlflow.model_name
    params = config  # ArrestModelConfig is a TrainingParams
    context.log.info("training %s on %s", name, plan.label())
    target = mlflow.target()
    with tracked_run(target, f"arrest_model {plan.test[-1]}",
                     tags={"dagster_run_id": context.run_id, "dagster_asset": "arrest_model"}) as run_id:
        result = train_arrest_model(plan, **inputs, params=params, info={"name": name})
        if baseline_rows is not None:
            result.baseline = train_baseline(plan, baseline_rows, inputs["validation_incidents"],
                                             inputs["test_incidents"], params)
        result.seconds["read"] = read_seconds
        ref = log_training(result, target, name, run_id, input_example(inputs["test_incidents"]),
                           extra_params={"end_month": plan.test[-1], "window_months": config.window_months},
                           dagster_run_id=context.run_id)
    result.model.info.update({"name": ref.name, "version": ref.version, "run_id": ref.run_id})
    return dg.Output(result.model, metadata={
        "mlflow_run_id": ref.run_id,
        "model_name": ref.name,
        "model_version": int(ref.version),
        "alias": "challenger",
        "model_uri": ref.uri,
        "mlflow_tracking_uri": dg.MetadataValue.text(target.tracking_uri if "@" not in target.tracking_uri
                                                     else "(from MLFLOW_TRACKING_URI)"),
        **result.figures(),
        "train_rows": len(inputs["train_rows"]),
        "training_seconds": round(time.perf_counter() - started, 1),
        "test_by_month": markdown_table(*result.test_by_month()),
        "test_auc_by_primary_type": markdown_table(*result.test_by_type()),
        "confusion_matrix": dg.MetadataValue.json({k: result.test.metrics[k] for k in ("tp", "fp", "fn", "tn")}),
    })


class PromotionGateConfig(dg.Config, PromotionFloors):
    """The floors and the tolerance of the promotion gate."""


@dg.asset_check(asset=arrest_model, blocking=True, pool=WAREHOUSE_POOL,
                description="The new version clears the floors (ROC AUC, MCC) and is not worse than the current "
                            "champion on the same test months beyond the tolerance. It judges only: champion_model "
                            "promotes a version that passed.")
def challenger_clears_promotion_gate(context: dg.AssetCheckExecutionContext, config: PromotionGateConfig,
                                     arrest_model, warehouse: Warehouse, mlflow: MlflowStore) -> dg.AssetCheckResult:
    from crime_assets.model.model_registry import (
        CHAMPION, alias_version, load_registered, promotion_decision, record_gate_verdict,
    )
    from crime_assets.model.training import evaluate

    challenger = arrest_model
    name, version = challenger.info["name"], str(challenger.info["version"])
    months = challenger.info["test_months"]
    champion_version = alias_version(mlflow.tracking_uri, name, CHAMPION)
    champion_metrics = None
    if champion_version is not None and champion_version != version:
        champion = load_registered(mlflow.tracking_uri, name, version=champion_version)
        with warehouse.connect() as con:
            incidents = incident_rows(con, months[0], months[-1])
        champion_metrics = evaluate(champion, incidents).metrics
    floors = config
    decision = promotion_decision(challenger.info["test_metrics"], champion_metrics, floors)
    # Recorded on the version itself, where champion_model reads it before promoting.
    record_gate_verdict(mlflow.tracking_uri, name, version, decision,
                        champion_version if champion_metrics is not None else None)
    context.log.info("%s v%s: %s", name, version, decision.summary())
    return dg.AssetCheckResult(
        passed=decision.promote,
        severity=dg.AssetCheckSeverity.ERROR,
        description=decision.summary(),
        metadata={
            "model": f"{name} v{version}",
            "test_months": f"{months[0]}...{months[-1]}",
            "champion": f"v{champion_version}" if champion_version else "none",
            "comparison": _comparison(decision.rows),
        },
    )


def _comparison(rows) -> dg.MarkdownMetadataValue:
    return markdown_table(["metric", "challenger", "champion (same months)", "floor"],
                          [(m, f"{c:.4f}", "" if o is None else f"{o:.4f}", f"{f:.2f}") for m, c, o, f in rows])


@dg.asset(
    group_name="model",
    kinds={"mlflow"},
    ins={"arrest_model": dg.AssetIn()},
    metadata={"alias": "champion"},
)
def champion_model(context: dg.AssetExecutionContext, arrest_model, mlflow: MlflowStore) -> dg.MaterializeResult:
    """The model drift_report and load_model() use: the registered version with the alias `champion`.

    Materialising it promotes arrest_model's latest version, which must have cleared the blocking check
    challenger_clears_promotion_gate (in the same run the check stops this step; in a later run the
    verdict the check recorded on the version is read back). The metadata names the version and the
    figures it was judged on."""
    from crime_assets.model.model_registry import CHAMPION, alias_version, gate_verdict, set_alias

    name, version = arrest_model.info["name"], str(arrest_model.info["version"])
    months = arrest_model.info["test_months"]
    verdict = gate_verdict(mlflow.tracking_uri, name, version)
    current = alias_version(mlflow.tracking_uri, name, CHAMPION)
    if verdict is None:
        raise dg.Failure(f"{name} v{version} was never judged by challenger_clears_promotion_gate: materialise "
                         "arrest_model with its checks first")
    if not verdict.passed:
        raise dg.Failure(f"{name} v{version} did not clear the promotion gate ({verdict.summary}); the champion "
                         f"stays {'v' + current if current else 'unset'}")
    if current not in (verdict.against, version):
        judged = f"against v{verdict.against}" if verdict.against else "with no champion to beat"
        raise dg.Failure(f"{name} v{version} was judged {judged}, but the champion is now v{current}: "
                         "materialise arrest_model with its checks again")
    set_alias(mlflow.tracking_uri, name, CHAMPION, version)
    context.log.info("%s v%s is the champion (%s)", name, version, verdict.summary)
    test = arrest_model.info["test_metrics"]
    return dg.MaterializeResult(metadata={
        "model": f"{name} v{version}",
        "model_name": name,
        "model_version": int(version),
        "model_uri": f"models:/{name}@{CHAMPION}",
        "previous_champion": f"v{current}" if current else "none",
        "test_months": f"{months[0]}...{months[-1]}",
        **{f"test_{k}": round(float(test[k]), 4) for k in ("roc_auc", "mcc", "pr_auc")},
        "promotion_gate": verdict.summary,
        "comparison": _comparison(verdict.rows),
    })


# -------------------------------------------------------------------------------------------- backtest

class BacktestConfig(dg.Config, TrainingParams):
    """The folds of the backtest; XGBoost's settings are TrainingParams."""

    window_months: int = Field(default=12, description="training months of each fold")
    validation_months: int = Field(default=1, description="validation months of each fold")
    first_test_month: Optional[str] = Field(default=None, description="default: the first month with a full window")
    last_test_month: Optional[str] = Field(default=None, description="default: the newest month in arrest_features")


@dg.asset(
    group_name="model",
    kinds={"xgboost", "mlflow", "duckdb"},
    pool=WAREHOUSE_POOL,
    deps=[arrest_features, "incidents_enriched", "police_stations"],
    metadata={"dagster/column_schema": column_schema(BACKTEST_COLUMNS),
              "dagster/table_name": f"warehouse.{BACKTEST_TABLE}"},
)
def model_backtest(context: dg.AssetExecutionContext, config: BacktestConfig, warehouse: Warehouse,
                   mlflow: MlflowStore) -> dg.MaterializeResult:
    """Rolling-origin evaluation of the arrest model: its metrics month by month over the history.

    For each test month, train on the window before its validation month(s) exactly as arrest_model does,
    test on that month, step one month. A metrics table per month (also the warehouse table model_backtest,
    and an MLflow run) and a line chart of ROC AUC, MCC, PR AUC and F1 over the months."""
    from crime_assets.model.model_registry import tracked_run

    with warehouse.connect() as con:
        folds = plan_folds(_available_months(con), config.window_months, config.validation_months,
                           config.first_test_month, config.last_test_month)

    def read_inputs(plan):
        # One fold's inputs at a time: memory stays at one window, and other writers get the file between folds.
        with warehouse.connect() as con:
            return _training_inputs(con, plan)

    with tracked_run(mlflow.target(), f"model_backtest {folds[0].test[0]}...{folds[-1].test[0]}",
                     tags={"dagster_run_id": context.run_id, "dagster_asset": "model_backtest"}):
        backtest = run_backtest(folds, read_inputs, config, Path(warehouse.data_dir) / "reports" / "model_backtest.png",
                                log=context.log.info)
    with warehouse.connect() as con:
        write_backtest(con, backtest.table)
    image = base64.b64encode(backtest.chart.read_bytes()).decode()
    return dg.MaterializeResult(metadata={
        **backtest.summary(),
        "chart_path": dg.MetadataValue.path(str(backtest.chart)),
        "chart": dg.MetadataValue.md(f"![model_backtest](data:image/png;base64,{image})"),
        "metrics_by_month": markdown_table(
            ["test month", "train", "rows", "arrest rate", "ROC AUC", "PR AUC", "MCC", "F1", "threshold"],
            backtest.rows_for_display()),
    })
