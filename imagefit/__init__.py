"""imagefit: transfer learning on images, offline first, fast on a CPU."""

from imagefit.errors import DataError, ImagefitError, ModelError, OptionError
from imagefit.lazy import lazy_exports
from imagefit.version import __version__ as __version__

# Imported on first use, so that `import imagefit` (and `imagefit --help`) stays light.
_EXPORTS = {
    "audit": "imagefit.audit",
    "fix": "imagefit.audit",
    "Classifier": "imagefit.inference",
    "Predictions": "imagefit.inference",
    "TrainResult": "imagefit.train",
    "check": "imagefit.data.check",
    "compare": "imagefit.overview",
    "demo": "imagefit.demo",
    "create_backbone": "imagefit.models",
    "imagenet": "imagefit.inference",
    "list_runs": "imagefit.overview",
    "load": "imagefit.runs",
    "predict": "imagefit.runs",
    "resume": "imagefit.train",
    "serve": "imagefit.serve",
    "train": "imagefit.train",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["DataError", "ImagefitError", "ModelError", "OptionError", *_EXPORTS]
