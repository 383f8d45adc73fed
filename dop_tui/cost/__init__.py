"""The learned cost model: candidate features, an XGBoost ranker, accuracy metrics.

``dop_tui.cost.model`` (``CostModel``) is not imported here: it loads xgboost, which importers of the
features or the metrics (the search events, the UI) do not need.
"""

from dop_tui.cost.features import feature_names, featurize, featurize_many
from dop_tui.cost.metrics import ModelMetrics, evaluate

__all__ = ["ModelMetrics", "evaluate", "feature_names", "featurize", "featurize_many"]
