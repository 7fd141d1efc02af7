"""Multi-label metrics from a 0/1 label matrix and label probabilities, computed by scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support


def binary_log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean over images of the summed binary cross-entropy of every label."""
    p = np.clip(np.asarray(proba, np.float64), 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(1).mean())


def mean_average_precision(y: np.ndarray, proba: np.ndarray) -> float:
    """Average precision averaged over the labels that have a positive image (mAP)."""
    present = y.sum(0) > 0
    return float(average_precision_score(y[:, present], proba[:, present], average="macro"))


def multilabel_scores(y: np.ndarray, proba: np.ndarray, thresholds: Sequence[float] | float) -> dict:
    """Loss, samples/micro/macro F1 of the decisions at `thresholds`, and mAP of the probabilities."""
    y, proba = np.asarray(y, np.int64), np.asarray(proba, np.float64)
    if len(y) == 0:
        return {"n": 0}
    predicted = (proba >= np.asarray(thresholds)).astype(np.int64)
    f1 = {
        avg: float(f1_score(y, predicted, average=avg, zero_division=0))
        for avg in ("samples", "micro", "macro")
    }
    return {
        "n": len(y),
        "loss": binary_log_loss(y, proba),
        "samples_f1": f1["samples"],
        "micro_f1": f1["micro"],
        "macro_f1": f1["macro"],
        "mAP": mean_average_precision(y, proba),
        "exact_match": float((predicted == y).all(1).mean()),
    }


def per_label_scores(y: np.ndarray, proba: np.ndarray, thresholds, classes: Sequence[str]) -> dict:
    """Precision, recall, F1, AP, support and counts of true/false positives and misses per label."""
    y, proba = np.asarray(y, np.int64), np.asarray(proba, np.float64)
    predicted = (proba >= np.asarray(thresholds)).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, zero_division=0)
    out = {}
    for j, name in enumerate(classes):
        has = y[:, j].sum() > 0
        out[name] = {
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1": float(f1[j]),
            "ap": float(average_precision_score(y[:, j], proba[:, j])) if has else None,
            "support": int(support[j]),
            "true_positives": int(((predicted[:, j] == 1) & (y[:, j] == 1)).sum()),
            "false_positives": int(((predicted[:, j] == 1) & (y[:, j] == 0)).sum()),
            "misses": int(((predicted[:, j] == 0) & (y[:, j] == 1)).sum()),
        }
    return out
