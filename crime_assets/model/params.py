"""The model's parameters (training, promotion): a light module (no XGBoost, no MLflow), so the Dagster
config classes can extend them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TrainingParams(BaseModel, frozen=True):
    """XGBoost settings: hist trees, early stopping on the validation months' log loss. Also the run config
    of the training assets (their config classes extend it), so each default is written here only."""

    learning_rate: float = Field(default=0.15, gt=0, description="XGBoost eta")
    max_depth: int = Field(default=8, ge=1, description="depth of each tree")
    min_child_weight: float = Field(default=5.0, ge=0, description="smallest hessian sum of a leaf")
    max_bin: int = Field(default=128, ge=2, description="histogram bins per feature")
    max_rounds: int = Field(default=600, ge=1, description="upper bound on boosting rounds (early stopping decides)")
    early_stopping_rounds: int = Field(default=30, ge=1, description="rounds without a better validation log loss")
    nthread: int = Field(default=2, ge=1, description="XGBoost threads")
    seed: int = 7

    def values(self) -> dict[str, Any]:
        """The parameters alone (a config class extending this one has more fields)."""
        return self.model_dump(include=set(TrainingParams.model_fields))

    def booster_params(self) -> dict[str, Any]:
        return {
            "objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist",
            "eta": self.learning_rate, "max_depth": self.max_depth, "min_child_weight": self.min_child_weight,
            "max_bin": self.max_bin, "nthread": self.nthread, "seed": self.seed,
        }


class PromotionFloors(BaseModel, frozen=True):
    """When a challenger may become the champion. Also the run config of challenger_clears_promotion_gate."""

    min_roc_auc: float = Field(default=0.85, ge=0.0, le=1.0, description="floor on the challenger's test ROC AUC")
    min_mcc: float = Field(default=0.55, ge=-1.0, le=1.0, description="floor on the challenger's test MCC")
    tolerance: float = Field(default=0.005, ge=0.0, description="how far the challenger may trail the champion on "
                                                                "the same test months (ROC AUC and MCC)")
