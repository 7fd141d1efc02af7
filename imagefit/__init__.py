"""imagefit: transfer learning on images, offline first, fast on a CPU."""

__version__ = "0.1.0"

from imagefit.data.check import check
from imagefit.errors import DataError, ImagefitError, ModelError, OptionError
from imagefit.inference import Classifier, Predictions, imagenet
from imagefit.models import create_backbone
from imagefit.runs import load, predict
from imagefit.serve import serve
from imagefit.train import TrainResult, resume, train

__all__ = [
    "Classifier",
    "DataError",
    "ImagefitError",
    "ModelError",
    "OptionError",
    "Predictions",
    "TrainResult",
    "check",
    "create_backbone",
    "imagenet",
    "load",
    "predict",
    "resume",
    "serve",
    "train",
]
