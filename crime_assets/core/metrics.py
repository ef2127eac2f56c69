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
    p = np.asarray(p, dtype=np.float64)
    if y.all() or (~y).all():
        return 0.5, 0.0
    order = np.argsort(-p, kind="stable")
    scores, labels = p[order], y[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
    tp = np.cumsum(labels)[last_of_value].astype(np.float64)
    fp = (last_of_value + 1 - tp).astype(np.float64)
    positives, negatives = labels.sum(), (~labels).sum()
    fn, tn = positives - tp, negatives - fp
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        mcc = np.where(denominator > 0, (tp * tn - fp * fn) / denominator, 0.0)
    best = int(np.argmax(mcc))
    return float(scores[last_of_value[best]]), float(mcc[best])


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), MCC, F1, precision, recall, Brier score, log loss, the confusion
    matrix at ``threshold`` and the base rates. AUCs are NaN when only one class is present."""
    y = np.asarray(y, dtype=bool)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    predicted = p >= threshold
    tp, fp = int((predicted & y).sum()), int((predicted & ~y).sum())
    fn, tn = int((~predicted & y).sum()), int((~predicted & ~y).sum())
    both = 0 < y.sum() < len(y)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "mcc": float(skm.matthews_corrcoef(y, predicted)) if len(y) else float("nan"),
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "precision": precision,
        "recall": recall,
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
        "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
        "log_loss": float(skm.log_loss(y, p, labels=[False, True])) if len(y) else float("nan"),
        "threshold": float(threshold),
        "rows": int(len(y)),
        "arrest_rate": float(y.mean()) if len(y) else float("nan"),
        "predicted_rate": float(predicted.mean()) if len(y) else float("nan"),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability vs observed arrest rate in equal-width probability bins."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    """ROC curves, one per label -> (y, p)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, (y, p) in curves.items():
        fpr, tpr, _ = skm.roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{label} (AUC {skm.roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def pr_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, (y, p) in curves.items():
        precision, recall, _ = skm.precision_recall_curve(y, p)
        ax.plot(recall, precision, label=f"{label} (AP {skm.average_precision_score(y, p):.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def calibration_figure(table: pd.DataFrame, title: str = "Calibration (test months)"):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect")
    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
    for _, row in table.iterrows():
        ax.annotate(f"{int(row['rows'])}", (row["mean_predicted"], row["observed_rate"]), fontsize=6,
                    xytext=(3, -8), textcoords="offset points")
    ax.set(xlabel="mean predicted probability", ylabel="observed arrest rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def importance_figure(importance: Mapping[str, float], top: int = 25, title: str = "Feature importance (gain)"):
    plt = _pyplot()
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.25 * len(items) + 1.2))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(xlabel="total gain share", title=title)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def backtest_figure(table: pd.DataFrame, metrics: Sequence[str] = ("roc_auc", "mcc", "pr_auc", "f1")):
    """One line per metric over the test months of a rolling-origin backtest."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for metric in metrics:
        ax.plot(table["test_month"], table[metric], marker="o", label=metric)
    if "arrest_rate" in table:
        ax.plot(table["test_month"], table["arrest_rate"], color="grey", ls=":", label="arrest rate")
    ax.set(xlabel="test month", ylabel="score", title="Rolling-origin backtest (train window, test next month)",
           ylim=(0, 1))
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=len(metrics) + 1, loc="lower left")
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> None:
    plt = _pyplot()
    fig.savefig(path, dpi=110)
    plt.close(fig)
