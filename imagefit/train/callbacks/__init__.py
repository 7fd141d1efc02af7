"""Callbacks for the training loop: checkpoints, early stopping, history CSV, progress bars, NaN guard,
BatchNorm kept in inference mode, a time budget, and experiment tracking (MLflow, TensorBoard)."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "Callback": "imagefit.train.callbacks.base",
    "Checkpoint": "imagefit.train.callbacks.checkpoint",
    "EarlyStopping": "imagefit.train.callbacks.early_stopping",
    "FrozenBatchNorm": "imagefit.train.callbacks.frozen_norms",
    "HistoryCSV": "imagefit.train.callbacks.history",
    "MLflowTracker": "imagefit.train.callbacks.mlflow_tracker",
    "NaNGuard": "imagefit.train.callbacks.nan_guard",
    "ProgressBar": "imagefit.train.callbacks.progress",
    "TensorBoardTracker": "imagefit.train.callbacks.tensorboard_tracker",
    "TimeBudget": "imagefit.train.callbacks.time_budget",
    "load_weights": "imagefit.train.callbacks.checkpoint",
    "trackers": "imagefit.train.callbacks.tracking",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
