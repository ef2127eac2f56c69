"""Rolling-origin backtest of the arrest model: one fold per test month, trained exactly as arrest_model is.

Plain functions behind the ``model_backtest`` asset: the folds, the loop (each fold's inputs read on its own,
so memory stays at one window), the MLflow logging of the run, and the warehouse table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from crime_assets.common.months import shift_month
from crime_assets.common.schema import Column, create_table_sql
from crime_assets.common.sql import transaction
from crime_assets.model.features import FEATURES_TABLE
from crime_assets.model.params import TrainingParams

BACKTEST_TABLE = "model_backtest"
FOLD_METRICS = {
    "roc_auc": "ROC AUC", "pr_auc": "Average precision", "mcc": "Matthews correlation at the threshold",
    "f1": "F1 at the threshold", "precision": "Precision at the threshold", "recall": "Recall at the threshold",
    "brier": "Brier score", "log_loss": "Log loss", "threshold": "Decision threshold (max MCC on validation)",
}
BACKTEST_COLUMNS = (
    Column("test_month", "VARCHAR", "The month the fold is judged on"),
    Column("train_first", "VARCHAR", "First training month"),
    Column("train_last", "VARCHAR", "Last training month"),
    Column("validation", "VARCHAR", "Validation month(s) (early stopping, threshold)"),
    Column("rows", "BIGINT", "Incidents in the test month"),
    Column("arrest_rate", "DOUBLE", "Observed arrest rate in the test month"),
    *(Column(metric, "DOUBLE", description) for metric, description in FOLD_METRICS.items()),
    Column("best_iteration", "INTEGER", "Boosting rounds kept (early stopping)"),
    Column("seconds", "DOUBLE", "Time to fit and score the fold"),
)


def plan_folds(available: Sequence[str], window_months: int, validation_months: int,
               first_test_month: str | None = None, last_test_month: str | None = None) -> list:
    """One SplitPlan per test month from the first with a full window (or ``first_test_month``) to the newest
    month of ``available`` (or ``last_test_month``); every month a fold needs must be in ``available``."""
    from crime_assets.model.training import SplitPlan

    if not available:
        raise RuntimeError(f"table {FEATURES_TABLE} is empty: materialise arrest_features first")
    first = first_test_month or shift_month(available[0], window_months + validation_months)
    last = last_test_month or available[-1]
    folds, month = [], first
    while month <= last:
        plan = SplitPlan.ending(month, window_months, validation_months, 1)
        plan.check_available(list(available), FEATURES_TABLE)
        folds.append(plan)
        month = shift_month(month, 1)
    if not folds:
        raise RuntimeError(f"no test month between {first} and {last}: the history holds {len(available)} months, "
                           f"a fold needs {window_months + validation_months + 1}")
    return folds


@dataclass
class Backtest:
    """The folds' metrics (one row per test month, the columns of BACKTEST_COLUMNS) and the chart's file."""

    table: pd.DataFrame
    chart: Path

    def summary(self) -> dict[str, object]:
        t = self.table
        worst = t.loc[t["mcc"].idxmin()]
        return {
            "dagster/row_count": len(t),
            "test_months": f"{t['test_month'].iloc[0]}...{t['test_month'].iloc[-1]}",
            "median_roc_auc": round(float(t["roc_auc"].median()), 4),
            "median_mcc": round(float(t["mcc"].median()), 4),
            "worst_month_mcc": f"{worst['test_month']} ({worst['mcc']:.4f})",
        }

    def rows_for_display(self) -> list[tuple]:
        return [(r.test_month, f"{r.train_first}..{r.train_last}", r.rows, f"{r.arrest_rate:.3f}", f"{r.roc_auc:.4f}",
                 f"{r.pr_auc:.4f}", f"{r.mcc:.4f}", f"{r.f1:.4f}", f"{r.threshold:.3f}") for r in self.table.itertuples()]


def run_backtest(folds: Sequence, read_inputs: Callable[[object], Mapping], params: TrainingParams, chart: Path,
                 log: Callable[[str], None] = lambda message: None) -> Backtest:
    """Train and judge every fold inside the active MLflow run (params, per-fold metrics as steps, the chart
    and the table as artifacts); ``read_inputs(plan)`` reads one fold's inputs from the warehouse."""
    import mlflow

    from crime_assets.model.metrics import backtest_figure
    from crime_assets.model.training import train_arrest_model

    mlflow.log_params({"window_months": len(folds[0].train), "validation_months": len(folds[0].validation),
                       "folds": len(folds), **{f"xgb_{k}": v for k, v in params.values().items()}})
    rows = []
    for step, plan in enumerate(folds):
        started = time.perf_counter()
        result = train_arrest_model(plan, **read_inputs(plan), params=params)
        m = result.test.metrics
        rows.append({"test_month": plan.test[0], "train_first": plan.train[0], "train_last": plan.train[-1],
                     "validation": ",".join(plan.validation), "rows": m["rows"], "arrest_rate": m["arrest_rate"],
                     **{k: m[k] for k in FOLD_METRICS},
                     "best_iteration": result.best_iteration, "seconds": time.perf_counter() - started})
        mlflow.log_metrics({k: m[k] for k in ("roc_auc", "pr_auc", "mcc", "f1", "brier")}, step=step)
        log(f"fold {plan.test[0]}: ROC AUC {m['roc_auc']:.4f}, MCC {m['mcc']:.4f}")
    table = pd.DataFrame(rows)
    figure = backtest_figure(table)
    mlflow.log_figure(figure, "plots/backtest.png")
    mlflow.log_text(table.to_csv(index=False), "tables/backtest.csv")
    chart.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(chart)
    return Backtest(table, chart)


def write_backtest(con: duckdb.DuckDBPyConnection, table: pd.DataFrame) -> None:
    """Replace the model_backtest table with ``table``, whole or not at all."""
    con.register("backtest_rows", table)
    try:
        with transaction(con):
            con.execute(f"DROP TABLE IF EXISTS {BACKTEST_TABLE}")
            con.execute(create_table_sql(BACKTEST_TABLE, BACKTEST_COLUMNS))
            con.execute(f"INSERT INTO {BACKTEST_TABLE} SELECT {', '.join(c.name for c in BACKTEST_COLUMNS)}"
                        " FROM backtest_rows")
    finally:
        con.unregister("backtest_rows")
