"""Drift of the arrest model's world: a month of incidents against the months the champion was trained on.

Plain functions, no Dagster. Four questions, each with its own threshold (``DriftThresholds``):

- **Feature drift**: the share of the model's features whose distribution moved, per Evidently's column
  drift test (``ValueDrift``: Wasserstein distance for numbers, Jensen-Shannon for categories, on samples
  of 1,000+ rows; K-S / chi-square p-values below that).
- **Score drift**: the champion's predicted probability, the same Evidently test on that column, plus the
  population stability index (PSI, deciles of the reference scores) as a scale-free figure to trend.
- **Target drift**: the arrest rate then and now, with a two-proportion z-test. On tens of thousands of
  rows any wobble is "significant", so drift also needs an absolute change of ``min_rate_change``.
- **Quality**: ROC AUC and MCC of the champion on the month (its arrests are known once the month is
  ingested) against the champion's own test figures.

``retrain_causes`` turns the answers into the causes that call for a retraining.
"""

from __future__ import annotations

import contextvars
import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from crime_assets.model.features import (
    CATEGORICAL_FEATURES, FEATURE_NAMES, FEATURES_TABLE, check_version, read_features,
)
from crime_assets.common.schema import Column, create_table_sql
from crime_assets.common.sql import transaction

if TYPE_CHECKING:
    from crime_assets.model.arrest_model import ArrestModel

SCORE = "arrest_probability"  # the champion's P(arrest) column in the compared frames
TARGET = "arrest"             # the label column (0/1)
DRIFT_TABLE = "drift_metrics"
DRIFT_COLUMNS = (
    Column("month", "VARCHAR", "The judged month (YYYY-MM)"),
    Column("metric", "VARCHAR", "rows, drifted_share, score_psi, arrest_rate, arrest_rate_reference, "
                                "target_p_value, roc_auc, mcc, champion_test_roc_auc, ..."),
    Column("value", "DOUBLE", "Its value for the month"),
)


class DriftThresholds(BaseModel, frozen=True):
    """When a month's drift calls for a new model. Also the run config of drift_report (its config extends this)."""

    max_drifted_share: float = Field(default=0.3, description="feature drift: share of drifted features above this")
    # 0.1-0.2 is "moderate", above 0.2 "significant"
    max_score_psi: float = Field(default=0.2, description="score drift: PSI above this")
    target_alpha: float = Field(default=0.01, description="target drift: two-proportion p-value below this ...")
    min_rate_change: float = Field(default=0.03, description="... and an absolute arrest-rate change of at least this")
    max_auc_drop: float = Field(default=0.03, description="quality: ROC AUC below the champion's test AUC by more than this")
    max_mcc_drop: float = Field(default=0.05, description="quality: MCC below the champion's test MCC by more than this")
    min_rows: int = Field(default=1000, ge=1, description="fewer rows in a month: not judged (ERROR)")

    def values(self) -> dict[str, float]:
        return self.model_dump(include=set(DriftThresholds.model_fields))


@dataclass
class TargetDrift:
    rate_reference: float
    rate_current: float
    z: float
    p_value: float
    drifted: bool


@dataclass
class DriftSummary:
    """What a report found; ``metrics()`` flattens it to (metric, value) rows for the drift_metrics table."""

    reference_rows: int
    current_rows: int
    features: list[str]
    drifted_features: list[str]
    column_scores: dict[str, float]
    target: TargetDrift | None = None
    score_drift_score: float | None = None   # Evidently's drift score of the score column
    score_drift_method: str | None = None
    score_drifted: bool | None = None        # Evidently's test on the score column
    score_psi: float | None = None
    quality: dict[str, float] = field(default_factory=dict)   # roc_auc, mcc now
    champion: dict[str, float] = field(default_factory=dict)  # roc_auc, mcc on the champion's test months
    causes: list[str] = field(default_factory=list)

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def auc_drop(self) -> float | None:
        return _drop(self.champion, self.quality, "roc_auc")

    @property
    def mcc_drop(self) -> float | None:
        return _drop(self.champion, self.quality, "mcc")

    def metrics(self) -> dict[str, float]:
        out = {"rows": self.current_rows, "reference_rows": self.reference_rows,
               "drifted_share": self.drifted_share, "drifted_features": len(self.drifted_features)}
        if self.target:
            out |= {"arrest_rate_reference": self.target.rate_reference, "arrest_rate": self.target.rate_current,
                    "target_p_value": self.target.p_value}
        out |= {"score_psi": self.score_psi, "score_drift_score": self.score_drift_score}
        for key in ("roc_auc", "mcc"):
            out |= {key: self.quality.get(key), f"champion_test_{key}": self.champion.get(key)}
        return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("column_scores")
        out |= {"drifted_share": round(self.drifted_share, 4), "auc_drop": self.auc_drop, "mcc_drop": self.mcc_drop}
        return _rounded(out)


def _drop(before: Mapping[str, float], now: Mapping[str, float], key: str) -> float | None:
    if key not in before or key not in now or not (np.isfinite(before[key]) and np.isfinite(now[key])):
        return None
    return float(before[key] - now[key])


def _rounded(value):
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------ statistics


def target_drift(reference: Sequence[bool], current: Sequence[bool], thresholds: DriftThresholds) -> TargetDrift:
    """The arrest rates then and now and statsmodels' two-proportion z-test of their difference (pooled)."""
    from statsmodels.stats.proportion import proportions_ztest  # a slow import, not paid when the code location loads

    ref, cur = np.asarray(reference, dtype=bool), np.asarray(current, dtype=bool)
    if not len(ref) or not len(cur):
        raise ValueError(f"target drift needs rows on both sides: {len(ref)} reference, {len(cur)} current")
    rate_ref, rate_cur = float(ref.mean()), float(cur.mean())
    # Equal rates include the all-0 / all-1 case, whose standard error is 0 (statsmodels would divide by it).
    z, p = (0.0, 1.0) if rate_ref == rate_cur else proportions_ztest([cur.sum(), ref.sum()], [len(cur), len(ref)])
    drifted = bool(p < thresholds.target_alpha and abs(rate_cur - rate_ref) >= thresholds.min_rate_change)
    return TargetDrift(rate_ref, rate_cur, float(z), float(p), drifted)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` over the reference's quantile bins.

    Not Evidently's PSI test: that bins both samples together (Sturges' rule) and so moves with the current
    month; a trend needs the reference's fixed deciles. A share is floored at 1e-4: an empty bin is far, not
    infinitely far."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    reference, current = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if not len(reference) or not len(current):
        return float("nan")
    edges = np.r_[-np.inf, np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1])), np.inf]
    ref, cur = (np.clip(np.histogram(x, edges)[0] / len(x), 1e-4, None) for x in (reference, current))
    return float(np.sum((cur - ref) * np.log(cur / ref)))


# -------------------------------------------------------------------------------------------- Evidently


def run_report(reference: pd.DataFrame, current: pd.DataFrame, numerical: Sequence[str], categorical: Sequence[str]):
    """Evidently's column drift (``ValueDrift``, with its test) for each given column; returns the snapshot.

    Not ``DataDriftPreset``: it computes every column's drift twice (its drifted-columns count runs the
    legacy calculation again), about 40% more time for a headline this module computes from the columns."""
    # Importing evidently makes an event loop that is never closed, and its handles keep a copy of the current
    # contextvars: inside a Dagster step, the step's context, hence the job, the code location and duckdb. Kept
    # alive to interpreter exit, that is nanobind's "leaked instances/types/functions" report. An empty context
    # gives the loop nothing of ours to hold.
    contextvars.Context().run(importlib.import_module, "evidently")
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(numerical_columns=list(numerical), categorical_columns=list(categorical))
    columns = [*numerical, *categorical]
    return Report([ValueDrift(column=c) for c in columns], include_tests=True).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition))


def column_drift(snapshot) -> dict[str, dict[str, Any]]:
    """Per column: Evidently's drift score, its method and whether its column test failed (= drifted)."""
    from evidently.core.metric_types import TestStatus

    out = {}
    for result in snapshot.metric_results.values():
        params = result.metric_value_location.metric.params
        out[params["column"]] = {"score": float(result.value), "method": params["method"],
                                 "drifted": any(test.status == TestStatus.FAIL for test in result.tests)}
    return out


def compare(reference: pd.DataFrame, current: pd.DataFrame, features: Sequence[str],
            categorical: Sequence[str] = (), thresholds: DriftThresholds = DriftThresholds(),
            score: str | None = None, target: str | None = TARGET, html_path: Path | None = None,
            max_rows: int | None = 50_000, seed: int = 7) -> DriftSummary:
    """Evidently on ``features`` (+ the score and target columns when given) of two frames, reduced to a
    summary. ``categorical``: which of the features are categories; the rest are numbers. Evidently sees
    at most ``max_rows`` rows of each frame (a repeatable sample: its tests gain nothing from more, and
    its time grows with them); the arrest rates and their test use every row."""
    numerical = [c for c in features if c not in categorical]
    numerical += [score] if score else []
    cats = [c for c in features if c in categorical]
    frames = []
    for frame in (reference, current):
        if max_rows is not None and len(frame) > max_rows:
            frame = frame.sample(max_rows, random_state=seed).sort_index()
        frame = frame.copy()
        if target:
            frame[target] = frame[target].astype("int64").astype(str)  # a category, not a number
        for c in cats:
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
        frames.append(frame)
    snapshot = run_report(frames[0], frames[1], numerical, cats + ([target] if target else []))
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = html_path.with_suffix(".tmp")
        snapshot.save_html(str(tmp))
        tmp.replace(html_path)  # a reader never sees half a report; a re-run overwrites
    columns = column_drift(snapshot)
    summary = DriftSummary(
        reference_rows=len(reference), current_rows=len(current), features=list(features),
        drifted_features=sorted(c for c in features if columns.get(c, {}).get("drifted")),
        column_scores={c: v["score"] for c, v in columns.items()},
    )
    if target:
        summary.target = target_drift(reference[target].to_numpy(bool), current[target].to_numpy(bool), thresholds)
    if score:
        found = columns.get(score, {})
        summary.score_drift_score, summary.score_drift_method = found.get("score"), found.get("method")
        summary.score_drifted = found.get("drifted")
        summary.score_psi = psi(reference[score].to_numpy(), current[score].to_numpy())
    return summary


# ------------------------------------------------------------------------------------ model and decision


def quality(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    from crime_assets.model.metrics import classification_metrics

    m = classification_metrics(y, p, threshold)
    return {k: m[k] for k in ("roc_auc", "mcc", "pr_auc", "f1", "precision", "recall")}


def retrain_causes(summary: DriftSummary, thresholds: DriftThresholds) -> list[str]:
    causes = []
    if summary.drifted_share > thresholds.max_drifted_share:
        causes.append("feature_drift")
    if summary.score_psi is not None and summary.score_psi > thresholds.max_score_psi:
        causes.append("score_drift")
    if summary.target is not None and summary.target.drifted:
        causes.append("target_drift")
    auc, mcc = summary.auc_drop, summary.mcc_drop
    if (auc is not None and auc > thresholds.max_auc_drop) or (mcc is not None and mcc > thresholds.max_mcc_drop):
        causes.append("quality_drop")
    return causes


def model_frame(model: ArrestModel, rows: pd.DataFrame) -> pd.DataFrame:
    """arrest_features rows -> the compared frame: the model's features, the label, and the model's score
    on exactly those features (the booster on the rows, as in training)."""
    from crime_assets.model.training import encode_feature_rows

    X = encode_feature_rows(rows, model.categories)
    frame = rows[list(FEATURE_NAMES)].copy()
    frame[TARGET] = rows[TARGET].astype(bool)
    frame[SCORE] = np.asarray(model.booster.inplace_predict(X), dtype=np.float64) if len(rows) else np.zeros(0)
    return frame


def judge_month(model: ArrestModel, reference_rows: pd.DataFrame, month_rows: pd.DataFrame,
                month_incidents: pd.DataFrame, thresholds: DriftThresholds,
                html_path: Path | None = None) -> DriftSummary:
    """The whole judgement of one month: Evidently on features, score and label; the champion's quality on
    the month's raw records (scored as in production, like its test figures); the causes to retrain."""
    summary = compare(model_frame(model, reference_rows), model_frame(model, month_rows), FEATURE_NAMES,
                      CATEGORICAL_FEATURES, thresholds, score=SCORE, target=TARGET, html_path=html_path)
    p = model.predict_proba(month_incidents)[:, 1]
    summary.quality = quality(month_incidents[TARGET].to_numpy(bool), p, model.threshold)
    tested = model.info.get("test_metrics", {})
    summary.champion = {k: float(tested[k]) for k in ("roc_auc", "mcc") if k in tested}
    summary.causes = retrain_causes(summary, thresholds)
    return summary


# ------------------------------------------------------------------------------------------- warehouse


def read_reference(con: duckdb.DuckDBPyConnection, months: Sequence[str], rows: int, seed: int = 7) -> pd.DataFrame:
    """A repeatable sample of at most ``rows`` arrest_features rows of ``months`` (the champion's training months)."""
    # The sample is drawn after the filter: a SELECT's own USING SAMPLE would sample the whole table first.
    frame = con.execute(
        f"SELECT * FROM (SELECT * FROM {FEATURES_TABLE} WHERE month IN (SELECT unnest($months))) "
        f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})", {"months": list(months)}).df()
    found = set(frame["month"].unique())
    missing = sorted(set(months) - found)
    if missing:
        raise RuntimeError(f"{FEATURES_TABLE} lacks the champion's training months {missing}: materialise "
                           "arrest_features for them first")
    check_version(frame)
    return frame.sort_values(["month", "id"], kind="stable").reset_index(drop=True)


def read_month(con: duckdb.DuckDBPyConnection, month: str) -> pd.DataFrame:
    return read_features(con, [month])


def write_metrics(con: duckdb.DuckDBPyConnection, month: str, metrics: Mapping[str, float]) -> None:
    """Replace the month's rows of drift_metrics (month, metric, value)."""
    con.execute(create_table_sql(DRIFT_TABLE, DRIFT_COLUMNS))
    with transaction(con):
        con.execute(f"DELETE FROM {DRIFT_TABLE} WHERE month = $month", {"month": month})
        if metrics:
            con.executemany(f"INSERT INTO {DRIFT_TABLE} VALUES (?, ?, ?)",
                            [(month, k, float(v)) for k, v in metrics.items()])


def read_trend(con: duckdb.DuckDBPyConnection, last_month: str, months: int = 24) -> pd.DataFrame:
    """drift_metrics as one row per month (columns: metrics), the ``months`` months up to ``last_month``."""
    long = con.execute(f"""SELECT month, metric, value FROM {DRIFT_TABLE}
        WHERE month <= $last AND month IN (SELECT DISTINCT month FROM {DRIFT_TABLE} WHERE month <= $last
                                           ORDER BY month DESC LIMIT {int(months)})""", {"last": last_month}).df()
    if long.empty:
        return pd.DataFrame()
    return long.pivot(index="month", columns="metric", values="value").sort_index().reset_index()


TREND_METRICS = ("drifted_share", "score_psi", "arrest_rate", "roc_auc", "mcc")


def trend_figure(trend: pd.DataFrame):
    """A small line chart of the drift figures over the months."""
    from crime_assets.model.metrics import new_figure

    fig, ax = new_figure(7, 3.2)
    for metric in TREND_METRICS:
        if metric in trend:
            ax.plot(trend["month"], trend[metric], marker="o", ms=3, label=metric)
    ax.set(xlabel="month", ylabel="value", title="Drift of the arrest model's inputs, scores and quality", ylim=(0, 1))
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=len(TREND_METRICS), loc="upper left")
    return fig


# ------------------------------------------------------------------------------------ a run of months


@dataclass
class DriftRun:
    """drift_report's months: each month's summary (None: too few rows to judge) and row count, and the months
    whose drift calls for a new model (never a month the champion was trained or tested on)."""

    summaries: dict[str, DriftSummary | None]
    rows: dict[str, int]
    retrain: dict[str, list[str]]

    def thin(self) -> dict[str, int]:
        return {m: self.rows[m] for m, s in self.summaries.items() if s is None}

    def flagged(self) -> dict[str, list[str]]:
        return {m: s.causes for m, s in self.summaries.items() if s and s.causes}

    def judged(self) -> dict[str, DriftSummary]:
        return {m: s for m, s in self.summaries.items() if s is not None}

    def by_month(self) -> tuple[list[str], list[tuple]]:
        return (["month", "rows", "drifted features", "score PSI", "arrest rate then / now", "ROC AUC now / test",
                 "MCC now / test", "causes"],
                [(m, s.current_rows, f"{len(s.drifted_features)}/{len(s.features)}", _text(s.score_psi),
                  f"{_text(s.target.rate_reference)} / {_text(s.target.rate_current)}",
                  f"{_text(s.quality.get('roc_auc'))} / {_text(s.champion.get('roc_auc'))}",
                  f"{_text(s.quality.get('mcc'))} / {_text(s.champion.get('mcc'))}", ", ".join(s.causes) or "none")
                 for m, s in self.judged().items()])


def _text(value) -> str:
    return "" if value is None else f"{value:.3f}"


def month_figures(s: DriftSummary) -> dict[str, Any]:
    """The figures of one judged month, for a person to read."""
    return {
        "drifted_share": round(s.drifted_share, 4),
        "drifted_features": ", ".join(s.drifted_features) or "none",
        "score_drift": f"PSI {_text(s.score_psi)}; {s.score_drift_method} {_text(s.score_drift_score)}"
                       f" ({'drifted' if s.score_drifted else 'no drift'})",
        "arrest_rate_reference": round(s.target.rate_reference, 4),
        "arrest_rate": round(s.target.rate_current, 4),
        "target_p_value": float(f"{s.target.p_value:.3g}"),
        "roc_auc": _rounded4(s.quality.get("roc_auc")), "champion_test_roc_auc": _rounded4(s.champion.get("roc_auc")),
        "mcc": _rounded4(s.quality.get("mcc")), "champion_test_mcc": _rounded4(s.champion.get("mcc")),
    }


def _rounded4(value):
    return None if value is None else round(float(value), 4)


def judge_months(model: ArrestModel, reference: pd.DataFrame, months: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
                 thresholds: DriftThresholds, html_path, log=lambda message: None) -> DriftRun:
    """Judge each month's (feature rows, incidents) against ``reference``; ``html_path(month)`` is where its
    Evidently report goes. A month the champion was trained or tested on asks for no retraining."""
    last_judged = (model.info.get("test_months") or model.info.get("train_months") or [""])[-1]
    summaries: dict[str, DriftSummary | None] = {}
    retrain: dict[str, list[str]] = {}
    for month, (rows, incidents) in months.items():
        if len(rows) < thresholds.min_rows:
            log(f"{month}: {len(rows)} rows, fewer than {thresholds.min_rows}: not judged")
            summaries[month] = None
            continue
        summary = judge_month(model, reference, rows, incidents, thresholds, html_path=html_path(month))
        summaries[month] = summary
        if summary.causes and month > last_judged:
            retrain[month] = summary.causes
        log(f"{month}: drifted {len(summary.drifted_features)}/{len(summary.features)} features, "
            f"causes {summary.causes or 'none'}")
    return DriftRun(summaries, {m: len(rows) for m, (rows, _) in months.items()}, retrain)
