"""Training and evaluation of the arrest model on a time-ordered split (never a random one).

A ``SplitPlan`` names consecutive months: the training window, then the validation months (early
stopping, and the decision threshold that maximises MCC), then the test months (the reported figures).
Training rows come from the ``arrest_features`` table (each month with the history of the months
before it). Validation and test months are scored the way the packaged model scores any records:
raw incidents in, features built from the history and references as of the end of the training window,
one month per batch -- so the reported figures are those of the artifact a user loads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from crime_assets.model.arrest_model import ArrestModel, Geography
from crime_assets.model.feature_history import HistoryTables
from crime_assets.model.features import CATEGORICAL_FEATURES, FEATURE_NAMES
from crime_assets.model.params import TrainingParams
from crime_assets.model.report_clock import ReportClock
from crime_assets.model.metrics import (
    HEADLINE, auc_by_group, best_mcc_threshold, calibration_table, classification_metrics,
)
from crime_assets.common.months import MonthWindow, parse_month, shift_month


@dataclass(frozen=True)
class SplitPlan:
    """Consecutive, disjoint runs of months: train < validation < test."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]

    @classmethod
    def ending(cls, end_month: str, window_months: int = 12, validation_months: int = 1,
               test_months: int = 1) -> SplitPlan:
        """The plan whose last test month is ``end_month``."""
        for name, value in (("window_months", window_months), ("validation_months", validation_months),
                            ("test_months", test_months)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        parse_month(end_month)
        test = tuple(shift_month(end_month, -k) for k in range(test_months - 1, -1, -1))
        validation = tuple(shift_month(test[0], -k) for k in range(validation_months, 0, -1))
        train = tuple(shift_month(validation[0], -k) for k in range(window_months, 0, -1))
        return cls(train, validation, test)

    def __post_init__(self) -> None:
        ordered = list(self.train) + list(self.validation) + list(self.test)
        if not (self.train and self.validation and self.test):
            raise ValueError("a split needs training, validation and test months")
        if ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
            raise ValueError(f"months must be time-ordered and disjoint: train {self.train}, "
                             f"validation {self.validation}, test {self.test}")

    @property
    def months(self) -> tuple[str, ...]:
        return self.train + self.validation + self.test

    def label(self) -> str:
        def span(months):
            return MonthWindow.from_keys(months[0], months[-1]).label
        return f"train {span(self.train)} | validation {span(self.validation)} | test {span(self.test)}"

    def check_available(self, present: Sequence[str], what: str) -> None:
        missing = [m for m in self.months if m not in set(present)]
        if missing:
            raise ValueError(f"{what} lacks month(s) {missing} needed by the split ({self.label()}); "
                             f"materialise them first")


@dataclass
class Evaluation:
    """Scores of one set of months: overall metrics, per month, per primary type, calibration."""

    metrics: dict[str, float]
    by_month: pd.DataFrame
    by_type: pd.DataFrame
    calibration: pd.DataFrame
    y: np.ndarray
    p: np.ndarray


@dataclass
class TrainingResult:
    model: ArrestModel
    plan: SplitPlan
    params: TrainingParams
    best_iteration: int
    validation: Evaluation
    test: Evaluation
    importance: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    baseline: BaselineResult | None = None

    def figures(self) -> dict[str, float | int | str]:
        """The headline numbers of this training, rounded for a person to read."""
        test, val = self.test.metrics, self.validation.metrics
        figures = {
            "split": self.plan.label(),
            **{f"test_{k}": round(float(test[k]), 4) for k in ("roc_auc", "mcc", "pr_auc", "f1", "brier")},
            "validation_roc_auc": round(float(val["roc_auc"]), 4),
            "threshold": round(float(self.model.threshold), 4),
            "best_iteration": self.best_iteration,
            "test_rows": int(test["rows"]),
        }
        if self.baseline:
            figures["baseline_test_roc_auc"] = round(float(self.baseline.test["roc_auc"]), 4)
            figures["baseline_test_mcc"] = round(float(self.baseline.test["mcc"]), 4)
        return figures

    def test_by_month(self) -> tuple[list[str], list[tuple]]:
        return (["month", "rows", "arrest rate", "ROC AUC", "MCC", "precision", "recall"],
                [(r.month, r.rows, f"{r.arrest_rate:.3f}", f"{r.roc_auc:.4f}", f"{r.mcc:.4f}", f"{r.precision:.3f}",
                  f"{r.recall:.3f}") for r in self.test.by_month.itertuples()])

    def test_by_type(self, top: int = 15) -> tuple[list[str], list[tuple]]:
        return (["primary type", "rows", "arrest rate", "ROC AUC"],
                [(r.group, r.rows, f"{r.arrest_rate:.3f}", "" if pd.isna(r.roc_auc) else f"{r.roc_auc:.3f}")
                 for r in self.test.by_type.head(top).itertuples()])


@dataclass
class BaselineResult:
    """A plain XGBoost on the raw categorical columns, trained and judged on the same split."""

    validation: dict[str, float]
    test: dict[str, float]
    best_iteration: int
    seconds: float


def category_orders(rows: pd.DataFrame) -> dict[str, list[str]]:
    """Each categorical feature's values ordered by their arrest rate in the training rows, so the
    model splits them as numbers (XGBoost's native categorical path predicts ~4x slower)."""
    orders = {}
    for name in CATEGORICAL_FEATURES:
        rates = rows.groupby(rows[name].astype(object), dropna=True)["arrest"].agg(["mean", "size"])
        rates = rates.reset_index().sort_values(["mean", name], kind="stable")
        orders[name] = [str(v) for v in rates[name]]
    return orders


def encode_feature_rows(rows: pd.DataFrame, categories: dict[str, list[str]]) -> np.ndarray:
    """arrest_features rows -> the float32 matrix the booster reads (the model's ``_matrix`` layout)."""
    X = np.empty((len(rows), len(FEATURE_NAMES)), dtype=np.float32, order="F")
    for j, name in enumerate(FEATURE_NAMES):
        if name in categories:
            code = pd.Index(categories[name]).get_indexer(rows[name].astype(object).to_numpy())
            X[:, j] = np.where(code < 0, np.nan, code)
        else:
            X[:, j] = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
    return X


def evaluate(model: ArrestModel, incidents: pd.DataFrame) -> Evaluation:
    """Score raw incident rows (with ``month`` and ``arrest``) month by month, as batches, and measure."""
    ys, ps, months, types = [], [], [], []
    per_month = []
    for month, part in incidents.groupby("month", sort=True):
        p = model.predict_proba(part)[:, 1]
        y = part["arrest"].to_numpy(dtype=bool)
        ys.append(y), ps.append(p), months.append(month), types.append(part["primary_type"].to_numpy(dtype=object))
        per_month.append({"month": month, **classification_metrics(y, p, model.threshold)})
    y, p = np.concatenate(ys), np.concatenate(ps)
    return Evaluation(
        metrics=classification_metrics(y, p, model.threshold),
        by_month=pd.DataFrame(per_month),
        by_type=auc_by_group(y, p, np.concatenate(types)),
        calibration=calibration_table(y, p),
        y=y, p=p,
    )


def fit_booster(X_train, y_train, X_val, y_val, params: TrainingParams,
                feature_names: Sequence[str] | None = None, feature_types=None,
                enable_categorical: bool = False) -> tuple[xgb.Booster, int]:
    """Boost until the validation log loss stops improving; returns the booster cut at its best round."""
    def matrix(X, y):
        return xgb.DMatrix(X, label=y, feature_names=list(feature_names) if feature_names else None,
                           feature_types=feature_types, enable_categorical=enable_categorical, nthread=params.nthread)
    booster = xgb.train(params.booster_params(), matrix(X_train, y_train), num_boost_round=params.max_rounds,
                        evals=[(matrix(X_val, y_val), "validation")], early_stopping_rounds=params.early_stopping_rounds,
                        verbose_eval=False)
    best = int(booster.best_iteration)
    return booster[: best + 1], best


def train_arrest_model(
    plan: SplitPlan,
    train_rows: pd.DataFrame,
    validation_incidents: pd.DataFrame,
    test_incidents: pd.DataFrame,
    history: HistoryTables,
    clock: ReportClock,
    stations: pd.DataFrame,
    params: TrainingParams = TrainingParams(),
    info: dict[str, Any] | None = None,
) -> TrainingResult:
    """Fit on ``train_rows`` (arrest_features of the training window), stop early and pick the threshold
    on the validation months, measure on the test months.

    ``history`` and ``clock`` are as of the end of the training window (they travel in the model);
    ``validation_incidents`` / ``test_incidents`` are raw incident rows with ``month`` and ``arrest``.
    """
    for name, frame, months in (("training", train_rows, plan.train), ("validation", validation_incidents, plan.validation),
                                ("test", test_incidents, plan.test)):
        found = set(frame["month"].unique())
        if not found <= set(months):
            raise ValueError(f"{name} rows include months outside the split: {sorted(found - set(months))}")
        if frame.empty:
            raise ValueError(f"no {name} rows for months {months}")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    categories = category_orders(train_rows)
    places = Geography(stations).memo(train_rows["latitude"].to_numpy(float), train_rows["longitude"].to_numpy(float))
    model = ArrestModel(booster=xgb.Booster(), categories=categories, history=history, clock=clock,
                        stations=stations, places=places, info=dict(info or {}))
    X_train = encode_feature_rows(train_rows, categories)
    y_train = train_rows["arrest"].to_numpy(dtype=np.float32)
    # Validation features exactly as the packaged model builds them, one month per batch.
    months = [part for _, part in validation_incidents.groupby("month", sort=True)]
    X_val = np.concatenate([model.matrix(part) for part in months])
    y_val = np.concatenate([part["arrest"].to_numpy(dtype=np.float32) for part in months])
    seconds["features"] = time.perf_counter() - started

    started = time.perf_counter()
    booster, best = fit_booster(X_train, y_train, X_val, y_val, params, feature_names=FEATURE_NAMES)
    seconds["fit"] = time.perf_counter() - started
    booster.set_param({"nthread": params.nthread})
    model.booster = booster
    p_val = booster.inplace_predict(X_val)
    model.threshold, _ = best_mcc_threshold(y_val.astype(bool), p_val)

    started = time.perf_counter()
    validation = evaluate(model, validation_incidents)
    test = evaluate(model, test_incidents)
    seconds["evaluate"] = time.perf_counter() - started

    gain = booster.get_score(importance_type="total_gain")
    total = sum(gain.values()) or 1.0
    importance = {name: gain.get(name, 0.0) / total for name in FEATURE_NAMES}
    model.info.update({
        "train_months": list(plan.train), "validation_months": list(plan.validation), "test_months": list(plan.test),
        "best_iteration": best, "threshold": model.threshold,
        "test_metrics": {k: test.metrics[k] for k in HEADLINE},
        "params": params.values(),
    })
    return TrainingResult(model, plan, params, best, validation, test, importance, seconds)


# ------------------------------------------------------------------------------------------ baseline

BASELINE_COLUMNS = ("primary_type", "iucr", "location_description", "fbi_code", "beat", "district", "ward",
                    "community_area", "domestic")


def _baseline_frame(incidents: pd.DataFrame, categories: dict[str, pd.Index] | None) -> tuple[pd.DataFrame, dict]:
    frame = pd.DataFrame(index=incidents.index)
    known = categories or {}
    for name in BASELINE_COLUMNS:
        values = incidents[name].astype(object).where(incidents[name].notna(), None).map(
            lambda v: v if v is None else str(v))
        if categories is None:
            known[name] = pd.Index(sorted(values.dropna().unique()))
        frame[name] = pd.Categorical(values, categories=known[name])
    return frame, known


def train_baseline(plan: SplitPlan, train_incidents: pd.DataFrame, validation_incidents: pd.DataFrame,
                   test_incidents: pd.DataFrame, params: TrainingParams = TrainingParams()) -> BaselineResult:
    """Plain XGBoost with native categoricals on the raw categorical columns (no engineered features),
    same split, same early stopping and threshold rule: the figure to beat."""
    started = time.perf_counter()
    X_train, categories = _baseline_frame(train_incidents, None)
    X_val, _ = _baseline_frame(validation_incidents, categories)
    X_test, _ = _baseline_frame(test_incidents, categories)
    y_train = train_incidents["arrest"].to_numpy(dtype=np.float32)
    y_val = validation_incidents["arrest"].to_numpy(dtype=bool)
    y_test = test_incidents["arrest"].to_numpy(dtype=bool)
    booster, best = fit_booster(X_train, y_train, X_val, y_val.astype(np.float32), params, enable_categorical=True)
    p_val = booster.inplace_predict(X_val)
    threshold, _ = best_mcc_threshold(y_val, p_val)
    p_test = booster.inplace_predict(X_test)
    return BaselineResult(classification_metrics(y_val, p_val, threshold), classification_metrics(y_test, p_test, threshold),
                          best, time.perf_counter() - started)
