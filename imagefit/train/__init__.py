"""Training: strategies that turn a dataset folder into a run folder."""

from imagefit.train.api import TrainResult, resume, train

__all__ = ["TrainResult", "resume", "train"]
