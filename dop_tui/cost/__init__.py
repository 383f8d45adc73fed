"""The learned cost model: candidate features, an XGBoost ranker, accuracy metrics."""
