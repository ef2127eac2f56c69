"""``load_model()``: the registered arrest model, ready to score raw incident records.

    from crime_assets import load_model
    model = load_model()                      # the champion
    model = load_model(alias="challenger")    # the newest trained version
    model = load_model(version=3)
    model.predict_proba(records)[:, 1]        # P(arrest); records: canonical DataFrame or Socrata JSON dicts
    model.predict(records)                    # 0/1 at the threshold chosen on validation

The store is MLFLOW_TRACKING_URI when set, else the sqlite store under CRIME_DATA_DIR
(``<CRIME_DATA_DIR>/mlflow/mlflow.db``); the name is ARREST_MODEL_NAME (default ``chicago_arrest``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crime_assets.common.settings import Settings

if TYPE_CHECKING:
    from crime_assets.model.arrest_model import ArrestModel


def load_model(alias: str | None = None, version: str | int | None = None, name: str | None = None,
               tracking_uri: str | None = None) -> ArrestModel:
    """The arrest model registered under ``name`` at ``alias`` (default ``champion``) or ``version``.

    Returns a ``crime_assets.model.arrest_model.ArrestModel``: ``predict_proba(records)`` gives an (n, 2)
    array (column 1: P(arrest)), ``predict(records)`` 0/1 decisions; ``.info`` holds name, version, run
    id, the training / test months and the test metrics. Raises LookupError when nothing matches, with
    the versions that exist.
    """
    if alias is not None and version is not None:
        raise ValueError("ask for an alias or a version, not both")
    settings = Settings.from_env()
    uri = tracking_uri or settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        # MLflow would create an empty store there; say where we looked instead.
        raise LookupError(f"no MLflow store at {uri}: set CRIME_DATA_DIR (or MLFLOW_TRACKING_URI) to where "
                          "arrest_model was trained, or materialise arrest_model first")
    from crime_assets.model.model_registry import CHAMPION, load_registered

    return load_registered(uri, name or settings.arrest_model_name, version=version,
                           alias=None if version is not None else (alias or CHAMPION))
