"""Training: strategies that turn a dataset folder into a run folder."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "TrainResult": "imagefit.train.lifecycle",
    "resume": "imagefit.train.entry",
    "train": "imagefit.train.entry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
