"""MLflow for the model assets, and the IO manager that makes ``arrest_model`` loadable as a value.

MLflow itself is imported only when a model asset runs or a value is loaded: importing the code
location stays as quick as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import dagster as dg
from pydantic import Field

from crime_assets.common.settings import Settings

if TYPE_CHECKING:
    from crime_assets.model.arrest_model import ArrestModel
    from crime_assets.model.model_registry import MlflowTarget


class MlflowStore(dg.ConfigurableResource):
    """The MLflow tracking server / registry the model assets log to (MLFLOW_TRACKING_URI, or a sqlite
    store in the data directory), the experiment, and the registered model's default name."""

    tracking_uri: str = Field(description="MLFLOW_TRACKING_URI, or sqlite:///<CRIME_DATA_DIR>/mlflow/mlflow.db")
    artifact_location: Optional[str] = Field(default=None, description="artifact root of a new experiment")
    experiment_name: str = Field(default="arrest_model", description="MLflow experiment of the model assets")
    model_name: str = Field(description="registered model name (ARREST_MODEL_NAME)")

    def target(self) -> MlflowTarget:
        from crime_assets.model.model_registry import MlflowTarget

        return MlflowTarget(self.tracking_uri, self.artifact_location, self.experiment_name)


class ArrestModelIOManager(dg.ConfigurableIOManager):
    """Stores ``arrest_model``'s value as a pointer (name, version, run id) to the version it registered in
    MLflow -- the model itself lives there -- and loads that version back as an ``ArrestModel``.

    This is what makes ``defs.load_asset_value(AssetKey("arrest_model"))`` return the model the latest
    materialisation trained (the ``challenger``, whether or not it was promoted); ``load_model()`` returns
    the ``champion``.
    """

    # Plain fields, not a nested MlflowStore: a resource with nested resources is built as a context
    # manager, which callers handing every resource to build_sensor_context(...) cannot open.
    tracking_uri: str = Field(description="the MlflowStore's tracking URI")
    pointer_path: str = Field(description="JSON file holding the latest materialisation's model version")

    def handle_output(self, context: dg.OutputContext, obj: ArrestModel) -> None:
        info = obj.info
        missing = [k for k in ("name", "version", "run_id") if not info.get(k)]
        if missing:
            raise ValueError(f"arrest_model returned a model that is not registered (no {missing} in its info)")
        pointer = {"name": info["name"], "version": str(info["version"]), "run_id": info["run_id"],
                   "dagster_run_id": context.run_id}
        path = Path(self.pointer_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_text(json.dumps(pointer, indent=1))
        path.with_suffix(".tmp").replace(path)
        context.add_output_metadata({"model_version_pointer": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        from crime_assets.model.model_registry import load_registered

        path = Path(self.pointer_path)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: materialise arrest_model first")
        pointer = json.loads(path.read_text())
        return load_registered(self.tracking_uri, pointer["name"], version=pointer["version"])


def build_model_resources(settings: Settings) -> dict[str, Any]:
    # A server URI may carry credentials: through EnvVar, so the UI shows the variable's name only.
    tracking_uri = dg.EnvVar("MLFLOW_TRACKING_URI") if settings.mlflow_uri_from_env else settings.mlflow_tracking_uri
    store = MlflowStore(
        tracking_uri=tracking_uri,
        artifact_location=settings.mlflow_artifact_location,
        model_name=settings.arrest_model_name,
    )
    return {
        "mlflow": store,
        "arrest_model_io_manager": ArrestModelIOManager(
            tracking_uri=tracking_uri, pointer_path=str(settings.data_dir / "mlflow" / "arrest_model_latest.json")),
    }
