"""imagefit: transfer learning on images, offline first, fast on a CPU."""

from imagefit.data.check import check
from imagefit.errors import DataError, ImagefitError, ModelError, OptionError
from imagefit.inference import Classifier, Predictions, imagenet
from imagefit.models import create_backbone
from imagefit.runs import load, predict
from imagefit.train import TrainResult, resume, train
from imagefit.version import __version__ as __version__

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
    "train",
]
