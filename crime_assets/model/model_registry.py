"""MLflow for the arrest model: tracked runs, the registry, aliases, loading, the promotion rule.

Plain functions over an ``MlflowTarget`` (tracking URI, artifact root, experiment), no Dagster.
Every run is opened by ``tracked_run``, which ends it FINISHED when its block completes and FAILED
(KILLED on an interrupt) when anything raises -- never left RUNNING.

The registered model is a pyfunc (models from code: ``arrest_pyfunc.py``, no pickled object) whose
artifact is the ``ArrestModel`` folder (``crime_assets.model.arrest_model``); ``load_registered`` returns the ``ArrestModel`` itself, and
``mlflow.pyfunc.load_model("models:/<name>@champion")`` works too (``predict`` returns
``arrest_probability`` and ``arrest_predicted``). A new version gets the alias ``challenger``; the
promotion gate (``promotion_decision``) judges it and records its verdict on the version
(``record_gate_verdict``); promoting a version that cleared it moves ``champion``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from crime_assets.model.params import PromotionFloors
from crime_assets.model.arrest_model import MODEL_FIELDS, REQUIRED_FIELDS, ArrestModel
from crime_assets.model.metrics import (
    HEADLINE, calibration_figure, importance_figure, pr_figure, roc_figure,
)
from crime_assets.model.training import TrainingResult

CHALLENGER, CHAMPION = "challenger", "champion"
BUNDLE = "arrest_model"  # the pyfunc artifact key holding the ArrestModel folder
# The signature's type of each raw field, and the pandas dtype of the non-text ones in the input example.
INPUT_TYPES = {"id": "long", "case_number": "string", "occurred_at": "datetime", "primary_type": "string",
               "iucr": "string", "domestic": "boolean", "block": "string", "location_description": "string",
               "fbi_code": "string", "beat": "long", "district": "long", "ward": "long", "community_area": "long",
               "latitude": "double", "longitude": "double"}
_PANDAS_TYPES = {"long": "int64", "boolean": "bool", "double": "float64"}


@dataclass(frozen=True)
class MlflowTarget:
    """Where runs and models go. ``artifact_location`` applies when the experiment is created."""

    tracking_uri: str
    artifact_location: str | None = None
    experiment: str = "arrest_model"


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    run_id: str
    tracking_uri: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _prepare_store(tracking_uri: str) -> None:
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def client_for(tracking_uri: str) -> MlflowClient:
    _prepare_store(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, target: MlflowTarget) -> str:
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(target.experiment, artifact_location=target.artifact_location)
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(target.experiment).experiment_id


@contextmanager
def tracked_run(target: MlflowTarget, run_name: str, tags: Mapping[str, str] | None = None) -> Iterator[str]:
    """An active MLflow run (yields its id) that ends FINISHED, or FAILED if the block raises."""
    client = client_for(target.tracking_uri)
    experiment_id = ensure_experiment(client, target)
    # The fluent API (log_model, log_figure) reads the process-wide URIs.
    mlflow.set_tracking_uri(target.tracking_uri)
    mlflow.set_registry_uri(target.tracking_uri)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {}),
                           nested=mlflow.active_run() is not None)
    run_id, status = run.info.run_id, "FAILED"
    try:
        yield run_id
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        try:
            mlflow.end_run(status=status)
        finally:
            # Whatever happened to the fluent run stack, this run is not left RUNNING.
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, status=status)


@contextmanager
def _quiet_artifacts() -> Iterator[None]:
    """No per-file progress bars from MLflow's artifact transfers (they flood Dagster's captured logs)."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


# -------------------------------------------------------------------------------------------- pyfunc


class ArrestModelPyfunc(mlflow.pyfunc.PythonModel):
    """The MLflow face of ``ArrestModel``: ``predict`` on raw records returns the probability and decision.

    ``predict`` has no type hints on purpose (MLflow warns once about it): hints would make MLflow coerce
    the input, while the explicit signature logged with the model already describes it."""

    def load_context(self, context) -> None:
        self.model = ArrestModel.load(context.artifacts[BUNDLE])

    def predict(self, context, model_input, params=None):
        p = self.model.predict_proba(model_input)[:, 1]
        return pd.DataFrame({"arrest_probability": p, "arrest_predicted": p >= self.model.threshold})


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec(INPUT_TYPES[name], name, required=name in REQUIRED_FIELDS) for name in MODEL_FIELDS])
    outputs = Schema([ColSpec("double", "arrest_probability"), ColSpec("boolean", "arrest_predicted")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(incidents: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """A few complete raw records in the signature's types."""
    complete = incidents[list(MODEL_FIELDS)].dropna().head(rows).reset_index(drop=True)
    return complete.astype({name: _PANDAS_TYPES[kind] for name, kind in INPUT_TYPES.items() if kind in _PANDAS_TYPES})


def pip_requirements() -> list[str]:
    import h3
    import sklearn
    import xgboost

    return [f"xgboost=={xgboost.__version__}", f"pandas=={pd.__version__}", f"numpy=={np.__version__}",
            f"h3=={h3.__version__}", f"scikit-learn=={sklearn.__version__}", "pyarrow", "duckdb",
            f"mlflow=={mlflow.__version__}", "crime_assets"]


# ------------------------------------------------------------------------------------------- logging


def _flat_metrics(prefix: str, metrics: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and np.isfinite(v)}


def model_card(result: TrainingResult, ref: ModelRef | None, dagster_run_id: str | None) -> str:
    """The model card: what the model is for, what it saw, how well it does, where it fails."""
    plan, test, val = result.plan, result.test.metrics, result.validation.metrics
    def span(months):
        return months[0] if len(months) == 1 else f"{months[0]} ... {months[-1]}"
    lines = [
        f"# Model card: {ref.name if ref else 'arrest model'}" + (f" v{ref.version}" if ref else ""),
        "",
        "Predicts whether a reported Chicago incident leads to an arrest, from what is known when it is "
        "reported (crime_assets issue 4). Gradient-boosted trees (XGBoost, hist), one probability per incident.",
        "",
        "## Data and split (time-ordered, never random)",
        f"- training: {span(plan.train)} ({len(plan.train)} months, arrest_features rows)",
        f"- validation: {span(plan.validation)} (early stopping at round {result.best_iteration + 1}; "
        f"decision threshold {result.model.threshold:.3f} maximises MCC)",
        f"- test: {span(plan.test)} ({test['rows']:,} incidents, scored as raw records by the packaged model)",
        f"- history lookups and id / case-number references as of {plan.train[-1]}",
        "",
        "## Test metrics",
        "| metric | test | validation |" + (" baseline (test) |" if result.baseline else ""),
        "|---|---|---|" + ("---|" if result.baseline else ""),
    ]
    for key in HEADLINE:
        row = f"| {key} | {test[key]:.4f} | {val[key]:.4f} |"
        if result.baseline:
            row += f" {result.baseline.test[key]:.4f} |"
        lines.append(row)
    lines += [
        "",
        f"Confusion matrix on test (threshold {result.model.threshold:.3f}): TP {test['tp']:,}, FP {test['fp']:,}, "
        f"FN {test['fn']:,}, TN {test['tn']:,}; arrest rate {test['arrest_rate']:.3f}, predicted {test['predicted_rate']:.3f}.",
        "",
        "## Per test month",
        "| month | rows | arrest rate | ROC AUC | MCC |",
        "|---|---|---|---|---|",
        *[f"| {r.month} | {r.rows:,} | {r.arrest_rate:.3f} | {r.roc_auc:.4f} | {r.mcc:.4f} |"
          for r in result.test.by_month.itertuples()],
        "",
        "## AUC per primary type (test, 10 largest)",
        "| primary type | rows | arrest rate | ROC AUC |",
        "|---|---|---|---|",
        *[f"| {r.group} | {r.rows:,} | {r.arrest_rate:.3f} | {r.roc_auc:.3f} |"
          for r in result.test.by_type.head(10).itertuples()],
        "",
        "## Most important features (share of total gain)",
        *[f"- {name}: {share:.3f}" for name, share in sorted(result.importance.items(), key=lambda kv: -kv[1])[:12]],
        "",
        "## Inputs and use",
        "- Raw incident records: a DataFrame in the canonical schema or Socrata JSON records; required "
        "fields id, case_number, occurred_at/date, primary_type, iucr, domestic (a missing one raises RecordError).",
        "- `from crime_assets import load_model; load_model().predict_proba(records)` -> (n, 2) array; "
        "`predict` applies the threshold above.",
        "",
        "## Limitations",
        "- Labels are arrests as recorded when the data was exported; an arrest made months later counts, so "
        "recent months' labels are incomplete in a live feed.",
        "- The reporting-delay features compare ids and case numbers with incidents that occurred in the same "
        "3-hour slot of the batch; batches smaller than about a day fall back on the training months' "
        "references, extrapolated, which blurs them for incidents long after the training window.",
        "- History rates are frozen at the end of training; retrain monthly (model_backtest shows how the "
        "figures move month by month).",
        "- A score is about the record, not the person: not for decisions about individuals.",
    ]
    if dagster_run_id:
        lines += ["", f"Trained by Dagster run `{dagster_run_id}`."]
    return "\n".join(lines) + "\n"


def log_training(
    result: TrainingResult,
    target: MlflowTarget,
    model_name: str,
    run_id: str,
    example: pd.DataFrame,
    extra_params: Mapping[str, Any] | None = None,
    dagster_run_id: str | None = None,
) -> ModelRef:
    """Log params, metrics, pictures, tables, the model card and the model into the active run ``run_id``,
    register a new version of ``model_name`` and give it the alias ``challenger``."""
    client = client_for(target.tracking_uri)
    plan = result.plan
    def span(months):
        return months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
    params = {
        "train_months": span(plan.train), "train_month_count": len(plan.train),
        "validation_months": span(plan.validation),
        "test_months": span(plan.test), "test_month_count": len(plan.test),
        **{f"xgb_{k}": v for k, v in result.params.values().items()},
        "best_iteration": result.best_iteration, "threshold": round(result.model.threshold, 6),
        "features": len(result.model.feature_names), "history_months": len(result.model.history.months),
        **dict(extra_params or {}),
    }
    mlflow.log_params(params)
    metrics = {**_flat_metrics("test", result.test.metrics), **_flat_metrics("validation", result.validation.metrics),
               **{f"seconds_{k}": v for k, v in result.seconds.items()}}
    if result.baseline:
        metrics |= _flat_metrics("baseline_test", result.baseline.test)
    mlflow.log_metrics(metrics)
    for step, row in enumerate(result.test.by_month.itertuples()):
        mlflow.log_metrics({"test_month_roc_auc": row.roc_auc, "test_month_mcc": row.mcc}, step=step)

    curves = {"test": (result.test.y, result.test.p), "validation": (result.validation.y, result.validation.p)}
    for name, fig in (("roc", roc_figure(curves)), ("precision_recall", pr_figure(curves)),
                      ("calibration", calibration_figure(result.test.y, result.test.p)),
                      ("feature_importance", importance_figure(result.importance))):
        mlflow.log_figure(fig, f"plots/{name}.png")
    mlflow.log_text(result.test.by_month.to_csv(index=False), "tables/test_by_month.csv")
    mlflow.log_text(result.test.by_type.to_csv(index=False), "tables/test_auc_by_primary_type.csv")
    mlflow.log_text(result.test.calibration.to_csv(index=False), "tables/test_calibration.csv")
    mlflow.log_dict({k: result.test.metrics[k] for k in ("tp", "fp", "fn", "tn")}, "tables/test_confusion_matrix.json")

    with tempfile.TemporaryDirectory() as scratch, _quiet_artifacts():
        bundle = result.model.save(Path(scratch) / BUNDLE)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(Path(__file__).with_name("arrest_pyfunc.py")), artifacts={BUNDLE: str(bundle)},
            signature=signature(), input_example=example, registered_model_name=model_name,
            pip_requirements=pip_requirements(),
            metadata={"threshold": result.model.threshold, "test_months": list(plan.test)},
        )
    version = str(info.registered_model_version)
    ref = ModelRef(model_name, version, run_id, target.tracking_uri)
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    headline = {k: f"{result.test.metrics[k]:.4f}" for k in ("roc_auc", "mcc", "pr_auc")}
    for key, value in {"test_months": params["test_months"], "train_months": params["train_months"],
                       **{f"test_{k}": v for k, v in headline.items()}}.items():
        client.set_model_version_tag(model_name, version, key, value)
    client.update_model_version(model_name, version, description=(
        f"Trained on {params['train_months']}, validated on {params['validation_months']}; test "
        f"{params['test_months']}: ROC AUC {headline['roc_auc']}, MCC {headline['mcc']}."))
    mlflow.log_text(model_card(result, ref, dagster_run_id), "model_card.md")
    return ref


# ------------------------------------------------------------------------------------------- loading


def resolve_version(client: MlflowClient, name: str, version: str | int | None = None, alias: str | None = None,
                    where: str = "the MLflow registry"):
    """The model version asked for; a LookupError that says what exists when it does not."""
    try:
        if version is not None:
            return client.get_model_version(name, str(version))
        return client.get_model_version_by_alias(name, alias or CHAMPION)
    except MlflowException as error:
        try:
            versions = client.search_model_versions(f"name='{name}'")
        except MlflowException:
            versions = []
        known = ", ".join(f"v{v.version}" + (f" ({', '.join(v.aliases)})" if v.aliases else "") for v in
                          sorted(versions, key=lambda v: int(v.version)))
        asked = f"version {version}" if version is not None else f"alias '{alias or CHAMPION}'"
        raise LookupError(
            f"model '{name}' has no {asked} in {where}: "
            + (f"versions: {known}" if known else "nothing is registered under that name yet -- materialise the "
               "arrest_model asset (README: Training the arrest model)")) from error


def load_registered(tracking_uri: str, name: str, version: str | int | None = None,
                    alias: str | None = None) -> ArrestModel:
    """The ``ArrestModel`` of a registered version (or alias; default ``champion``)."""
    client = client_for(tracking_uri)
    found = resolve_version(client, name, version, alias, where=tracking_uri)
    location = client.get_model_version_download_uri(name, str(found.version))
    if location.startswith("file:"):
        local = Path(urlparse(location).path)  # a local artifact store: read in place, no copy
    else:
        with _quiet_artifacts():
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=location, tracking_uri=tracking_uri,
                                                             registry_uri=tracking_uri))
    bundle = local / "artifacts" / BUNDLE
    if not (bundle / "model.json").exists():
        candidates = list(local.glob(f"**/{BUNDLE}/model.json"))
        if not candidates:
            raise FileNotFoundError(f"models:/{name}/{found.version} holds no {BUNDLE} folder (under {local})")
        bundle = candidates[0].parent
    model = ArrestModel.load(bundle)
    model.info.update({"name": name, "version": str(found.version), "run_id": found.run_id,
                       "aliases": list(found.aliases), "tracking_uri": tracking_uri})
    return model


# ----------------------------------------------------------------------------------------- promotion


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reasons: tuple[str, ...]
    rows: tuple[tuple[str, float, float | None, float], ...]  # metric, challenger, champion, floor

    def summary(self) -> str:
        return ("promote: " if self.promote else "keep the champion: ") + "; ".join(self.reasons)


def promotion_decision(challenger: Mapping[str, float], champion: Mapping[str, float] | None,
                       floors: PromotionFloors = PromotionFloors()) -> PromotionDecision:
    """Promote when the challenger clears both floors and trails the champion (measured on the challenger's
    test months) by no more than the tolerance on ROC AUC and MCC."""
    reasons, rows, ok = [], [], True
    for metric, floor in (("roc_auc", floors.min_roc_auc), ("mcc", floors.min_mcc)):
        value = float(challenger[metric])
        other = None if champion is None else float(champion[metric])
        rows.append((metric, value, other, floor))
        if not value >= floor:
            ok = False
            reasons.append(f"{metric} {value:.4f} is below the floor {floor:.2f}")
        if other is not None and not value >= other - floors.tolerance:
            ok = False
            reasons.append(f"{metric} {value:.4f} trails the champion's {other:.4f} by more than {floors.tolerance}")
    if ok:
        reasons.append("clears the floors" + (" and holds up against the champion" if champion is not None
                                              else "; no champion yet"))
    return PromotionDecision(ok, tuple(reasons), tuple(rows))


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    client_for(tracking_uri).set_registered_model_alias(name, alias, str(version))


def alias_version(tracking_uri: str, name: str, alias: str) -> str | None:
    try:
        return str(client_for(tracking_uri).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


# The promotion gate's verdict, recorded as tags of the version it judged, so whoever promotes it (the
# champion_model asset, in the same run or a later one) reads the judgement instead of redoing it.
GATE_TAG = "promotion_gate"


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    summary: str
    against: str | None  # the champion version the challenger was compared with, None when there was none
    rows: tuple[tuple[str, float, float | None, float], ...]  # metric, challenger, champion, floor


def record_gate_verdict(tracking_uri: str, name: str, version: str, decision: PromotionDecision,
                        against: str | None) -> None:
    client = client_for(tracking_uri)
    tags = {GATE_TAG: "passed" if decision.promote else "failed", f"{GATE_TAG}_summary": decision.summary()[:4000],
            f"{GATE_TAG}_champion": against or "none", f"{GATE_TAG}_figures": json.dumps(decision.rows)}
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)


def gate_verdict(tracking_uri: str, name: str, version: str) -> GateVerdict | None:
    """The verdict ``record_gate_verdict`` left on ``name`` ``version``, or None when it was never judged."""
    tags = client_for(tracking_uri).get_model_version(name, str(version)).tags
    if GATE_TAG not in tags:
        return None
    against = tags.get(f"{GATE_TAG}_champion", "none")
    rows = tuple(tuple(row) for row in json.loads(tags.get(f"{GATE_TAG}_figures", "[]")))
    return GateVerdict(tags[GATE_TAG] == "passed", tags.get(f"{GATE_TAG}_summary", ""),
                       None if against == "none" else against, rows)
