"""Chicago crime records as a monthly-partitioned Dagster asset graph (see README).

``from crime_assets import load_model`` is resolved lazily: importing the package stays cheap, and
MLflow / XGBoost load only when a model is asked for.
"""

__all__ = ["load_model"]


def __getattr__(name: str):
    if name == "load_model":
        from crime_assets.model_loading import load_model

        return load_model
    raise AttributeError(f"module 'crime_assets' has no attribute {name!r}")
