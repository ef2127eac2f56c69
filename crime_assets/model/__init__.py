"""The arrest model, plain part: features (sql/arrest_features.sql), training, metrics, the model object and
the MLflow registry. Its Dagster definitions are in crime_assets/defs/model."""
