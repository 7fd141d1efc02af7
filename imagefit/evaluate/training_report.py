"""The report a training run writes at its end: its validation split evaluated, then report.html."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imagefit.data.folders import Dataset, Sample
from imagefit.evaluate.evaluation import write_evaluation
from imagefit.evaluate.multilabel_evaluation import write_multilabel_evaluation
from imagefit.evaluate.report import EVALUATION_DIR, REPORT, write_report
from imagefit.inference.classifier import Classifier, Predictions
from imagefit.runs import read_config

log = logging.getLogger(__name__)


def training_report(
    run_dir: str | os.PathLike,
    classifier: Classifier,
    dataset: Dataset,
    n_images: int = 8,
    **extract_options,
) -> Path | None:
    """Evaluate the dataset's validation split into RUN/evaluation/, then write RUN/report.html.

    `extract_options` go to the classifier's feature extractor (engine, batch_size, workers, cache,
    progress): with the cache on, a linear run's validation features are read back, not recomputed.
    Files that did not decode were reported during training and are listed again, not re-warned.
    The run is saved before this is called, so a failure here is a warning, not a failed run.
    """
    run_dir = Path(run_dir)
    try:
        evaluation = _evaluate_valid(run_dir, classifier, dataset, n_images, extract_options)
        path = write_report(run_dir, evaluation, run_dir / REPORT)
    except Exception as exc:  # the model is saved: a report that cannot be drawn must not lose the run
        log.warning(
            "the run is saved but its report failed (%s: %s): retry with imagefit report",
            type(exc).__name__,
            exc,
        )
        return None
    log.info("report: %s", path)
    return path


def _evaluate_valid(run_dir: Path, classifier, dataset: Dataset, n_images: int, options: dict) -> dict | None:
    """The evaluation of the validation split, written into RUN/evaluation/; None without one."""
    valid = dataset.valid
    if not valid:
        return None
    preds = _predictions(classifier, valid, options)
    if not preds.paths:
        return None
    record = {"run": str(run_dir), "data": str(dataset.root), "split": "valid"}
    by_path = {str(s.path): s.label_set for s in valid}
    if preds.multilabel:
        y = np.zeros((len(preds.paths), len(preds.classes)), np.int64)
        for row, path in enumerate(preds.paths):
            y[row, list(by_path[str(path)])] = 1
        return write_multilabel_evaluation(preds, y, run_dir / EVALUATION_DIR, n_images, **record)
    y_true = np.array([by_path[str(p)][0] for p in preds.paths], dtype=int)
    temperature = (read_config(run_dir).calibration or {}).get("temperature")
    return write_evaluation(preds, y_true, run_dir / EVALUATION_DIR, n_images, 0, temperature, **record)


def _predictions(classifier: Classifier, samples: Sequence[Sample], options: dict) -> Predictions:
    features = classifier.extractor(**options)([s.path for s in samples], desc="valid report")
    kept = [p for p, ok in zip(features.paths, features.ok, strict=True) if ok]
    probs = classifier.probabilities(features.vectors) if kept else np.zeros((0, len(classifier.classes)))
    preds = Predictions(classifier.classes, kept, probs, features.errors, classifier.thresholds)
    return classifier.judged(preds, features.vectors)
