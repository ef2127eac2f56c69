"""The MLflow pyfunc entry point of the arrest model ("models from code": MLflow stores this file with the
model and runs it on load, instead of unpickling an object). It only names the class; the trained state
is the ``arrest_model`` artifact folder the class loads (``crime_assets.model.arrest_model.ArrestModel``)."""

import mlflow

from crime_assets.model.model_registry import ArrestModelPyfunc

mlflow.models.set_model(ArrestModelPyfunc())
