"""Linear heads fitted on cached features: logistic regression, its C searched, folded into a torch Linear.

The single-label head is one multinomial logistic regression; the multi-label head one binary
regression per label, with a C shared by the labels and a decision threshold per label chosen on
out-of-fold probabilities to maximise its F1. Both choose C by cross-validated log loss over a grid
that grows while the best C is on an edge. The linear strategy, finetune's probe head and the
audit fit them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import KFold, StratifiedKFold
from tqdm.auto import tqdm

from imagefit.evaluate.multilabel_metrics import binary_log_loss
from imagefit.train.multilabel.thresholds import best_thresholds

FOLDS = 3  # of the multi-label head's cross-validation
CONSTANT_P = 1e-4  # a label that a fit never sees both ways is predicted at its frequency, clipped

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # searched first
# Steps of about half a decade; the search walks on while the best C sits on an edge of what it
# tried, and stops at either end of this ladder.
C_LADDER = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, *C_GRID, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3)


def search_c(loss: Callable[[float], float], progress: bool = False) -> dict[float, float]:
    """loss(C) over C_GRID, extended one ladder step at a time while the best C is on an edge."""
    losses: dict[float, float] = {}
    todo = list(C_GRID)
    with tqdm(desc="fit head", unit="C", disable=not progress, leave=False) as bar:
        while todo:
            for c in todo:
                losses[c] = loss(c)
                bar.update()
            todo = _beyond_edge(losses)
    return dict(sorted(losses.items()))


def _beyond_edge(losses: dict[float, float]) -> list[float]:
    """The next ladder value past the best C when it is the smallest or largest tried, else none."""
    best = min(losses, key=losses.get)
    i = C_LADDER.index(best)
    if best == min(losses) and i > 0:
        return [C_LADDER[i - 1]]
    if best == max(losses) and i < len(C_LADDER) - 1:
        return [C_LADDER[i + 1]]
    return []


@dataclass
class LinearHead:
    """Weights of logits = features @ weight.T + bias, for every class."""

    weight: np.ndarray  # (n_classes, dim)
    bias: np.ndarray  # (n_classes,)
    C: float
    cv_loss: dict[float, float]  # cross-validated log loss of every C searched, by C
    oof: np.ndarray | None = None  # out-of-fold class probabilities at the chosen C (None: no folds)

    def summary(self) -> dict:
        """The head's entry in metrics.json: the chosen C, the grid searched and its losses."""
        return {
            "C": self.C,
            "C_grid": sorted(self.cv_loss),
            "cv_log_loss": {str(k): v for k, v in sorted(self.cv_loss.items())},
        }


def fit_linear_head(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    seed: int = 0,
    progress: bool = True,
    balanced: bool = False,
) -> LinearHead:
    """Standardise, choose C by stratified cross-validated log loss, refit on all, fold the scaling in.

    `balanced` weighs each class by n / (k * n_c) in the fit (`--class-weights auto`).
    """
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    folds = min(3, int(np.unique(y, return_counts=True)[1].min()))
    cv_loss: dict[float, float] = {}
    oof: dict[float, np.ndarray] = {}
    if folds >= 2:

        def loss(c: float) -> float:
            value, oof[c] = _cv_loss(z, y, c, folds, seed, n_classes, balanced)
            return value

        cv_loss = search_c(loss, progress)
        best = min(cv_loss, key=cv_loss.get)
    else:
        best = 1.0
    model = _logreg(best, seed, balanced).fit(z, y)
    weight, bias = _full_rank(model, n_classes)
    return LinearHead(weight / scale, bias - (weight / scale) @ mean, best, cv_loss, oof.get(best))


def _logreg(c: float, seed: int, balanced: bool = False) -> LogisticRegression:
    weight = "balanced" if balanced else None
    return LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight=weight)


def _cv_loss(
    z: np.ndarray, y: np.ndarray, c: float, folds: int, seed: int, n_classes: int, balanced: bool
) -> tuple[float, np.ndarray]:
    """Mean log loss over the folds, and every image's out-of-fold class probabilities."""
    losses, oof = [], np.zeros((len(y), n_classes))
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for tr, va in split.split(z, y):
        model = _logreg(c, seed, balanced).fit(z[tr], y[tr])
        proba = np.zeros((len(va), n_classes))
        proba[:, model.classes_] = model.predict_proba(z[va])
        proba /= proba.sum(1, keepdims=True)
        oof[va] = proba
        losses.append(log_loss(y[va], proba, labels=list(range(n_classes))))
    return float(np.mean(losses)), oof


def _full_rank(model: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One logit per class; a binary model's single logit is split as -z/2, +z/2 (same softmax)."""
    coef, icpt = model.coef_, model.intercept_
    present = model.classes_
    if len(present) == 2:
        coef = np.concatenate([-coef / 2, coef / 2])
        icpt = np.concatenate([-icpt / 2, icpt / 2])
    weight = np.zeros((n_classes, coef.shape[1]))
    bias = np.full(n_classes, -1e4)  # a class absent from training is never predicted
    weight[present], bias[present] = coef, icpt
    return weight.astype(np.float32), bias.astype(np.float32)


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


def load_head(model: torch.nn.Module, head) -> None:
    """Copy a fitted head into the model's classifier layer (which must have the head's shape)."""
    fc = model.get_classifier()
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(head.weight))
        fc.bias.copy_(torch.from_numpy(head.bias))


def label_issue_count(probabilities: np.ndarray, labels: np.ndarray) -> int:
    """How many images confident learning (cleanlab) estimates to be mislabelled, from out-of-fold
    probabilities already computed."""
    from cleanlab.count import num_label_issues

    labels = np.asarray(labels, np.int64)
    if len(np.unique(labels)) < 2 or len(labels) < 2:
        return 0
    probs = np.asarray(probabilities, np.float64)
    return int(num_label_issues(labels, probs / probs.sum(1, keepdims=True)))
