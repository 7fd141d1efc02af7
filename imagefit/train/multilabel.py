"""The multi-label linear head: one logistic regression per label on cached features.

The regularisation C is shared by the labels and chosen, as for the single-label head, by
cross-validated log loss (binary, summed over labels); each label's decision threshold is then
chosen on the out-of-fold probabilities of that C to maximise its F1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from imagefit.evaluate.multilabel_metrics import binary_log_loss
from imagefit.train.c_search import search_c

FOLDS = 3
CONSTANT_P = 1e-4  # a label that a fit never sees both ways is predicted at its frequency, clipped


@dataclass
class MultiLabelHead:
    """Weights of logits = features @ weight.T + bias (sigmoid per label), and a threshold per label."""

    weight: np.ndarray  # (n_labels, dim)
    bias: np.ndarray  # (n_labels,)
    C: float
    cv_loss: dict[float, float]  # cross-validated binary log loss (summed over labels) by C
    thresholds: np.ndarray  # (n_labels,): a label is predicted when its probability reaches it

    def summary(self) -> dict:
        """The head's entry in metrics.json."""
        return {
            "C": self.C,
            "C_grid": sorted(self.cv_loss),
            "cv_log_loss": {str(k): v for k, v in sorted(self.cv_loss.items())},
            "thresholds": [round(float(t), 6) for t in self.thresholds],
        }


def fit_multilabel_head(
    x: np.ndarray, y: np.ndarray, seed: int = 0, progress: bool = True, balanced: bool = False
) -> MultiLabelHead:
    """Standardise, choose C by k-fold log loss, refit every label on all, fold the scaling in.

    `y` is the (n, n_labels) 0/1 matrix; `balanced` weighs positives and negatives of each label
    by n / (2 * n_c) (`--class-weights auto`).
    """
    from threadpoolctl import threadpool_limits

    # Many small fits: one BLAS thread each is far faster than threads that wait on each other
    # (measured 20x on two busy cores).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_head(x, y, seed, progress, balanced)


def _fit_head(x: np.ndarray, y: np.ndarray, seed: int, progress: bool, balanced: bool) -> MultiLabelHead:
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    oof: dict[float, np.ndarray] = {}
    if len(z) >= 2 * FOLDS:
        warm: dict = {}  # each fold's fit of each label starts from its fit at the C tried before

        def loss(c: float) -> float:
            oof[c] = out_of_fold(z, y, c, seed, balanced, warm)
            return binary_log_loss(y, oof[c])

        cv_loss = search_c(loss, progress)
        best = min(cv_loss, key=cv_loss.get)
        thresholds = best_thresholds(y, oof[best])
    else:
        cv_loss, best, thresholds = {}, 1.0, np.full(y.shape[1], 0.5)
    weight, bias = _fit_labels(z, y, best, seed, balanced)
    return MultiLabelHead(weight / scale, bias - (weight / scale) @ mean, best, cv_loss, thresholds)


def out_of_fold(
    z: np.ndarray, y: np.ndarray, c: float, seed: int, balanced: bool, warm: dict | None = None
) -> np.ndarray:
    """Each image's label probabilities from the heads fitted on the other folds.

    `warm` keeps each fold's models between calls, so that the next C starts from this one's fit.
    """
    proba = np.zeros(y.shape, np.float64)
    for k, (tr, va) in enumerate(KFold(FOLDS, shuffle=True, random_state=seed).split(z)):
        models = None if warm is None else warm.setdefault(k, {})
        weight, bias = _fit_labels(z[tr], y[tr], c, seed, balanced, models)
        proba[va] = sigmoid(z[va] @ weight.T + bias)
    return proba


def _fit_labels(
    z: np.ndarray, y: np.ndarray, c: float, seed: int, balanced: bool, models: dict | None = None
):
    weight = np.zeros((y.shape[1], z.shape[1]), np.float64)
    bias = np.zeros(y.shape[1], np.float64)
    for j in range(y.shape[1]):
        positives = y[:, j].mean()
        if 0 < positives < 1:
            model = (models or {}).get(j) or LogisticRegression(
                max_iter=2000, random_state=seed, class_weight="balanced" if balanced else None,
                warm_start=models is not None,
            )  # fmt: skip
            model.set_params(C=c).fit(z, y[:, j])
            if models is not None:
                models[j] = model
            weight[j], bias[j] = model.coef_[0], model.intercept_[0]
        else:
            p = np.clip(positives, CONSTANT_P, 1 - CONSTANT_P)
            bias[j] = np.log(p / (1 - p))
    return weight.astype(np.float32), bias.astype(np.float32)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))


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
