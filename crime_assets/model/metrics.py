"""Classification metrics and pictures of a binary scorer: plain functions of labels and probabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

HEADLINE = ("roc_auc", "pr_auc", "mcc", "f1", "precision", "recall", "brier", "log_loss")


def best_mcc_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The threshold t maximising the MCC of ``p >= t``, exactly (every distinct score is tried), and that MCC."""
    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        return 0.5, 0.0
    tn, fp, fn, tp, thresholds = skm.confusion_matrix_at_thresholds(y, p)
    with np.errstate(invalid="ignore"):  # 0/0 where every row is predicted positive: MCC 0
        mcc = np.nan_to_num((tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    best = int(np.argmax(mcc))
    return float(thresholds[best]), float(mcc[best])


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), MCC, F1, precision, recall, Brier score, log loss, the confusion
    matrix at ``threshold`` and the base rates. AUCs are NaN when only one class is present."""
    y, p = np.asarray(y, dtype=bool), np.asarray(p, dtype=np.float64)
    if not len(y):
        raise ValueError("classification_metrics: no rows to measure")
    predicted = p >= threshold
    tn, fp, fn, tp = (int(n) for n in skm.confusion_matrix(y, predicted, labels=[False, True]).ravel())
    precision, recall, f1, _ = skm.precision_recall_fscore_support(y, predicted, average="binary", zero_division=0)
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "mcc": float(skm.matthews_corrcoef(y, predicted)),
        "f1": float(f1), "precision": float(precision), "recall": float(recall),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "brier": float(skm.brier_score_loss(y, p, labels=[False, True])),
        # float32 scores can round to exactly 0 or 1: capped at 1e-7, one such row costs 16 nats, not 36.
        "log_loss": float(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[False, True])),
        "threshold": float(threshold),
        "rows": len(y),
        "arrest_rate": float(y.mean()),
        "predicted_rate": float(predicted.mean()),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability vs observed arrest rate in the non-empty equal-width probability bins,
    with their row counts: the points of scikit-learn's ``calibration_curve(y, p, n_bins=bins)``."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], p)  # calibration_curve's binning: a score on an edge joins the lower bin
    frame = pd.DataFrame({"bin": which, "p": p, "y": y}).groupby("bin").agg(
        mean_predicted=("p", "mean"), observed_rate=("y", "mean"), rows=("y", "size"))
    frame.insert(0, "upper", edges[frame.index + 1])
    frame.insert(0, "lower", edges[frame.index])
    return frame.reset_index(drop=True)


def auc_by_group(y: np.ndarray, p: np.ndarray, groups: Sequence, min_rows: int = 30) -> pd.DataFrame:
    """ROC AUC per group (e.g. primary type), for groups with ``min_rows`` rows and both outcomes."""
    frame = pd.DataFrame({"group": np.asarray(groups, dtype=object), "y": np.asarray(y, dtype=bool),
                          "p": np.asarray(p, dtype=float)})
    rows = []
    for group, part in frame.groupby("group", sort=True):
        arrests = int(part["y"].sum())
        auc = float(skm.roc_auc_score(part["y"], part["p"])) \
            if len(part) >= min_rows and 0 < arrests < len(part) else float("nan")
        rows.append((group, len(part), arrests / len(part), auc))
    out = pd.DataFrame(rows, columns=["group", "rows", "arrest_rate", "roc_auc"])
    return out.sort_values("rows", ascending=False).reset_index(drop=True)


# ------------------------------------------------------------------------------------------ pictures


def new_figure(width: float, height: float):
    """A figure of its own and its axes: no pyplot, so nothing global to close and safe in any thread;
    ``fig.savefig(path)`` writes it at 110 dpi."""
    from matplotlib.figure import Figure  # imported here: loading the packaged model needs no matplotlib

    fig = Figure(figsize=(width, height), dpi=110, layout="tight")
    return fig, fig.subplots()


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    """ROC curves, one per label -> (y, p)."""
    fig, ax = new_figure(5.5, 5)
    for i, (label, (y, p)) in enumerate(curves.items()):
        shown = skm.RocCurveDisplay.from_predictions(y, p, ax=ax, plot_chance_level=i == len(curves) - 1)
        shown.line_.set_label(f"{label} (AUC {shown.roc_auc:.3f})")  # scikit-learn's 2 decimals hide the gaps
    ax.set_title("ROC")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def pr_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    """Precision-recall curves, one per label -> (y, p)."""
    fig, ax = new_figure(5.5, 5)
    for label, (y, p) in curves.items():
        shown = skm.PrecisionRecallDisplay.from_predictions(y, p, ax=ax)
        shown.line_.set_label(f"{label} (AP {shown.average_precision:.3f})")
    ax.set_title("Precision-recall")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def calibration_figure(y: np.ndarray, p: np.ndarray, bins: int = 10, title: str = "Calibration (test months)"):
    """scikit-learn's calibration curve, each point labelled with its bin's row count."""
    from sklearn.calibration import CalibrationDisplay  # a slow import, not paid by loading the packaged model

    fig, ax = new_figure(5.5, 5)
    CalibrationDisplay.from_predictions(y, p, n_bins=bins, name="model", ax=ax)
    for row in calibration_table(y, p, bins).itertuples():
        ax.annotate(f"{row.rows}", (row.mean_predicted, row.observed_rate), fontsize=6,
                    xytext=(3, -8), textcoords="offset points")
    ax.set(xlabel="mean predicted probability", ylabel="observed arrest rate", title=title)
    return fig


def importance_figure(importance: Mapping[str, float], top: int = 25, title: str = "Feature importance (gain)"):
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = new_figure(6.5, 0.25 * len(items) + 1.2)
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(xlabel="total gain share", title=title)
    ax.tick_params(axis="y", labelsize=7)
    return fig


def backtest_figure(table: pd.DataFrame, metrics: Sequence[str] = ("roc_auc", "mcc", "pr_auc", "f1")):
    """One line per metric over the test months of a rolling-origin backtest."""
    fig, ax = new_figure(8, 4.2)
    for metric in metrics:
        ax.plot(table["test_month"], table[metric], marker="o", label=metric)
    if "arrest_rate" in table:
        ax.plot(table["test_month"], table["arrest_rate"], color="grey", ls=":", label="arrest rate")
    ax.set(xlabel="test month", ylabel="score", title="Rolling-origin backtest (train window, test next month)",
           ylim=(0, 1))
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=len(metrics) + 1, loc="lower left")
    return fig
