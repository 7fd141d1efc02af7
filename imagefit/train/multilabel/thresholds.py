"""Per-label decision thresholds: 0.5 until chosen, then the probability that gives each label its best F1.

The linear heads choose them on out-of-fold probabilities; the strategies that train for epochs
choose them on the validation images once training is over.
"""

from __future__ import annotations

import numpy as np

UNTUNED = 0.5  # a label's threshold until one is chosen


def untuned_thresholds(n_labels: int) -> list[float]:
    """The thresholds a multi-label classifier predicts with before they are chosen."""
    return [UNTUNED] * n_labels


def best_thresholds(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per label, the probability from which predicting the label gives the best F1 (0.5 if never seen)."""
    return np.array([_best_threshold(y[:, j], proba[:, j]) for j in range(y.shape[1])])


def _best_threshold(truth: np.ndarray, p: np.ndarray) -> float:
    n_pos = int(truth.sum())
    if n_pos == 0:
        return 0.5
    order = np.argsort(-p, kind="stable")
    p_sorted, hits = p[order], np.cumsum(truth[order])
    cuts = np.flatnonzero(np.append(p_sorted[1:] < p_sorted[:-1], True))  # last index of each value
    f1 = 2 * hits[cuts] / (cuts + 1 + n_pos)
    k = int(cuts[np.argmax(f1)])
    below = p_sorted[k + 1] if k + 1 < len(p_sorted) else 0.0
    return float((p_sorted[k] + below) / 2)
