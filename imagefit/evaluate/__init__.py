"""Evaluation of a trained run on labelled images: metrics, confusion matrix, galleries."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "confusion_text": "imagefit.evaluate.metrics",
    "evaluate": "imagefit.evaluate.evaluation",
    "evaluation_metrics": "imagefit.evaluate.metrics",
    "multilabel_scores": "imagefit.evaluate.multilabel_metrics",
    "report": "imagefit.evaluate.report",
    "write_report": "imagefit.evaluate.report",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
