"""Training: strategies that turn a dataset folder into a run folder."""

from imagefit.train.api import TrainResult, train

__all__ = ["TrainResult", "train"]
