"""Training: strategies that turn a dataset folder into a run folder."""

from imagefit.train.run import TrainResult
from imagefit.train.strategies import resume, train

__all__ = ["TrainResult", "resume", "train"]
