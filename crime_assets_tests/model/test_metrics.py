"""Metrics, the MCC threshold, the promotion rule, and the time-ordered split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from crime_assets.model.metrics import (
    auc_by_group, best_mcc_threshold, calibration_figure, calibration_table, classification_metrics, pr_figure,
    roc_figure,
)
from crime_assets.model.model_registry import PromotionFloors, promotion_decision
from crime_assets.common.months import shift_month
from crime_assets.model.training import SplitPlan


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(4)
    y = rng.random(5_000) < 0.25
    p = np.clip(0.25 + 0.35 * (y - 0.25) + rng.normal(0, 0.2, y.size), 0, 1).round(3)  # ties on purpose
    return y, p


def test_best_threshold_is_the_exact_mcc_maximum(scored):
    y, p = scored
    threshold, mcc = best_mcc_threshold(y, p)
    brute = max(skm.matthews_corrcoef(y, p >= t) for t in np.unique(p))
    assert mcc == pytest.approx(brute, abs=1e-12)
    assert skm.matthews_corrcoef(y, p >= threshold) == pytest.approx(mcc, abs=1e-12)


def test_classification_metrics_match_sklearn(scored):
    y, p = scored
    m = classification_metrics(y, p, 0.4)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, p >= 0.4))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p >= 0.4))
    assert m["precision"] == pytest.approx(skm.precision_score(y, p >= 0.4))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p >= 0.4))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == y.size
    assert [[m["tn"], m["fp"]], [m["fn"], m["tp"]]] == skm.confusion_matrix(y, p >= 0.4).tolist()


def test_one_class_gives_nan_aucs_not_an_exception():
    m = classification_metrics(np.zeros(10, bool), np.linspace(0, 1, 10), 0.5)
    assert np.isnan(m["roc_auc"]) and m["fp"] == 5
    assert best_mcc_threshold(np.zeros(10, bool), np.linspace(0, 1, 10)) == (0.5, 0.0)
    with pytest.raises(ValueError, match="no rows"):
        classification_metrics(np.zeros(0, bool), np.zeros(0), 0.5)


def test_calibration_and_auc_by_group(scored):
    y, p = scored
    table = calibration_table(y, p, bins=10)
    assert table["rows"].sum() == y.size
    assert (table["lower"] < table["upper"]).all()
    observed, predicted = calibration_curve(y, p, n_bins=10)  # the points the calibration picture draws
    assert table["observed_rate"].to_numpy() == pytest.approx(observed)
    assert table["mean_predicted"].to_numpy() == pytest.approx(predicted)
    groups = np.where(np.arange(y.size) % 2 == 0, "even", "odd")
    by_group = auc_by_group(y, p, groups)
    assert set(by_group["group"]) == {"even", "odd"}
    assert by_group["roc_auc"].between(0.5, 1).all()


def test_pictures_name_each_curve_with_its_figure(scored):
    import matplotlib.pyplot as plt

    y, p = scored
    curves = {"test": (y, p), "validation": (y[::2], p[::2])}
    legend = [t.get_text() for t in roc_figure(curves).axes[0].get_legend().get_texts()]
    assert legend[:2] == [f"test (AUC {skm.roc_auc_score(y, p):.3f})",
                          f"validation (AUC {skm.roc_auc_score(y[::2], p[::2]):.3f})"]
    legend = [t.get_text() for t in pr_figure(curves).axes[0].get_legend().get_texts()]
    assert legend == [f"test (AP {skm.average_precision_score(y, p):.3f})",
                      f"validation (AP {skm.average_precision_score(y[::2], p[::2]):.3f})"]
    counts = [t.get_text() for t in calibration_figure(y, p).axes[0].texts]
    assert counts == [str(n) for n in calibration_table(y, p)["rows"]]
    assert plt.get_fignums() == []  # figures of their own: nothing left open in pyplot


def test_promotion_needs_both_floors():
    floors = PromotionFloors(min_roc_auc=0.85, min_mcc=0.55)
    assert promotion_decision({"roc_auc": 0.91, "mcc": 0.66}, None, floors).promote
    low = promotion_decision({"roc_auc": 0.91, "mcc": 0.50}, None, floors)
    assert not low.promote and "mcc 0.5000 is below the floor 0.55" in low.summary()


def test_promotion_against_the_champion_within_tolerance():
    floors = PromotionFloors(tolerance=0.005)
    champion = {"roc_auc": 0.92, "mcc": 0.67}
    assert promotion_decision({"roc_auc": 0.917, "mcc": 0.666}, champion, floors).promote      # within tolerance
    worse = promotion_decision({"roc_auc": 0.91, "mcc": 0.671}, champion, floors)
    assert not worse.promote and "trails the champion" in worse.summary()


def test_split_is_time_ordered_and_disjoint():
    plan = SplitPlan.ending("2016-12", window_months=12, validation_months=1, test_months=11)
    assert plan.train == tuple(f"2015-{m:02d}" for m in range(1, 13))
    assert plan.validation == ("2016-01",)
    assert plan.test == tuple(f"2016-{m:02d}" for m in range(2, 13))
    assert max(plan.train) < min(plan.validation) <= max(plan.validation) < min(plan.test)
    with pytest.raises(ValueError, match="time-ordered"):
        SplitPlan(("2016-02",), ("2016-01",), ("2016-03",))
    with pytest.raises(ValueError, match="lacks month"):
        plan.check_available(["2015-01"], "arrest_features")
    assert shift_month("2016-01", -13) == "2014-12"
