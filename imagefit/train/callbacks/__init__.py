"""Callbacks for the training loop: checkpoints, early stopping, history CSV, progress bars, NaN guard,
BatchNorm kept in inference mode."""

from imagefit.train.callbacks.base import Callback
from imagefit.train.callbacks.checkpoint import Checkpoint, load_weights
from imagefit.train.callbacks.early_stopping import EarlyStopping
from imagefit.train.callbacks.frozen_norms import FrozenBatchNorm
from imagefit.train.callbacks.history import HistoryCSV
from imagefit.train.callbacks.nan_guard import NaNGuard
from imagefit.train.callbacks.progress import ProgressBar

__all__ = [
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "FrozenBatchNorm",
    "HistoryCSV",
    "NaNGuard",
    "ProgressBar",
    "load_weights",
]
