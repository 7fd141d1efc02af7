"""Evaluation of a trained run on labelled images: metrics, confusion matrix, galleries."""

from imagefit.evaluate.evaluation import evaluate
from imagefit.evaluate.metrics import confusion_text, evaluation_metrics
from imagefit.evaluate.report import report, write_report

__all__ = ["confusion_text", "evaluate", "evaluation_metrics", "report", "write_report"]
