"""The model the scoring service serves: the registered version at an alias, followed when the alias moves.

``ChampionWatcher.refresh()`` asks the registry which version the alias points to and, when that is
not the version being served, loads it with ``load_model`` and swaps it in by assigning one complete
``ServedModel``. A request reads ``watcher.served`` once, so it scores with one model and reports that
model's name and version, whatever a swap does meanwhile. A failed check or load keeps the model that
is being served and says why in ``problem``; with no model yet, ``problem`` is the reason for 503.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from crime_assets.model_loading import load_model
from crime_assets.serving.schemas import EXAMPLE_RECORD

# uvicorn's own logger: its handlers are the ones configured in a `uvicorn ...` process.
log = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class ServedModel:
    model: Any  # the ArrestModel load_model() returns
    name: str
    version: str
    alias: str
    loaded_at: datetime
    # Hold it while scoring: an ArrestModel is not safe to call from two threads at once (pandas builds
    # its index lookups lazily, and two threads building one get InvalidIndexError).
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class ChampionWatcher:
    """The version of registered model ``name`` at ``alias`` in the MLflow store ``tracking_uri``."""

    def __init__(self, tracking_uri: str, name: str, alias: str) -> None:
        self.tracking_uri, self.name, self.alias = tracking_uri, name, alias
        self.served: ServedModel | None = None
        self.problem: str | None = f"models:/{name}@{alias}: the first load has not finished yet"
        self._lock = threading.Lock()
        self._client = None

    def refresh(self) -> bool:
        """Serve the version the alias points to now; True when that swapped the model."""
        with self._lock:
            try:
                swapped = self._refresh()
            # Whatever fails in the registry or the artifacts, the model being served stays served.
            except Exception as error:  # noqa: BLE001
                problem = str(error) if isinstance(error, LookupError) else f"{type(error).__name__}: {error}"
                if problem != self.problem:
                    log.warning("models:/%s@%s: %s%s", self.name, self.alias, problem,
                                f" (still serving v{self.served.version})" if self.served else "")
                self.problem = problem
                return False
            self.problem = None
            return swapped

    def _refresh(self) -> bool:
        if self.served is None:
            model = load_model(alias=self.alias, name=self.name, tracking_uri=self.tracking_uri)
        else:
            version = self._alias_version()
            if version == self.served.version:
                return False
            model = load_model(version=version, name=self.name, tracking_uri=self.tracking_uri)
        # One XGBoost thread: a process scores one request at a time, so parallelism comes from more workers;
        # OpenMP threads synchronise on every call, and on a busy machine that wait outweighs a small batch.
        model.booster.set_param({"nthread": 1})
        # Scored once before it is swapped in: a version that cannot score never replaces one that can,
        # and its lookups are built before the first request needs them.
        model.predict_proba([EXAMPLE_RECORD])
        before = self.served
        self.served = ServedModel(model, self.name, str(model.info["version"]), self.alias, datetime.now(timezone.utc))
        log.info("serving %s v%s (alias %s%s)", self.name, self.served.version, self.alias,
                 f"; was v{before.version}" if before else "")
        return True

    def _alias_version(self) -> str:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        uri = self.tracking_uri
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            # MlflowClient would create an empty store in its place.
            raise LookupError(f"the MLflow store {uri} is gone")
        if self._client is None:
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        try:
            return str(self._client.get_model_version_by_alias(self.name, self.alias).version)
        except MlflowException as error:
            raise LookupError(f"models:/{self.name}@{self.alias} cannot be resolved: {error.message}") from error
