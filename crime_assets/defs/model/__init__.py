"""The arrest model: feature table, training with MLflow tracking and registry, backtest, promotion gate."""
