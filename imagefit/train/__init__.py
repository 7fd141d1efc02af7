"""Training: strategies that turn a dataset folder into a run folder."""

from imagefit._lazy import lazy_exports

_EXPORTS = {
    "TrainResult": "imagefit.train.api",
    "resume": "imagefit.train.api",
    "train": "imagefit.train.api",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
