"""Inference: classifiers that predict on files, and ImageNet top-k."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "Classifier": "imagefit.inference.classifier",
    "Predictions": "imagefit.inference.classifier",
    "Submission": "imagefit.inference.submission",
    "imagenet": "imagefit.inference.imagenet",
    "write_submission": "imagefit.inference.submission",
    "write_tag_submission": "imagefit.inference.tag_submission",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
