"""Classification metrics from true labels and predicted probabilities, all computed by scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

TOP_K = (2, 3, 5)


def evaluation_metrics(y_true: Sequence[int], probs: np.ndarray, classes: Sequence[str]) -> dict:
    """Loss, accuracy, top-k accuracy (k < classes), per-class P/R/F1/support and confusion matrices."""
    y_true = np.asarray(y_true, dtype=int)
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(1, keepdims=True)  # float32 softmax rows miss 1 by more than log_loss allows
    labels = list(range(len(classes)))
    y_pred = probs.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "n": len(y_true),
        "classes": list(classes),
        "loss": float(log_loss(y_true, probs, labels=labels)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "top_k_accuracy": {
            str(k): float(top_k_accuracy_score(y_true, probs, k=k, labels=labels))
            for k in TOP_K
            if k < len(classes)
        },
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalised": _row_normalised(cm).tolist(),
    }


def _row_normalised(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the class's support); rows of a class with no images stay 0."""
    totals = cm.sum(1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros(cm.shape, dtype=np.float64), where=totals > 0)


def confusion_text(cm: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The confusion matrix as a table: rows are true classes, columns predicted classes."""
    cm = np.asarray(cm)
    width = max(6, *(len(c) for c in classes), len(str(int(cm.max(initial=0)))))
    corner = "true \\ pred"
    first = max(len(corner), *(len(c) for c in classes))
    lines = [corner.ljust(first) + "".join(f" {c:>{width}}" for c in classes)]
    for name, row in zip(classes, cm, strict=True):
        lines.append(name.ljust(first) + "".join(f" {int(v):>{width}}" for v in row))
    return "\n".join(lines)
