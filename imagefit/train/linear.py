"""The linear strategy's head: logistic regression on frozen features, folded into a torch Linear."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from tqdm.auto import tqdm

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # searched first
# Steps of about half a decade; the search walks on while the best C sits on an edge of what it
# tried, and stops at either end of this ladder.
C_LADDER = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, *C_GRID, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3)


@dataclass
class LinearHead:
    """Weights of logits = features @ weight.T + bias, for every class."""

    weight: np.ndarray  # (n_classes, dim)
    bias: np.ndarray  # (n_classes,)
    C: float
    cv_loss: dict[float, float]  # cross-validated log loss of every C searched, by C

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
    if folds >= 2:
        cv_loss = search_c(lambda c: _cv_loss(z, y, c, folds, seed, n_classes, balanced), progress)
        best = min(cv_loss, key=cv_loss.get)
    else:
        best = 1.0
    model = _logreg(best, seed, balanced).fit(z, y)
    weight, bias = _full_rank(model, n_classes)
    return LinearHead(weight / scale, bias - (weight / scale) @ mean, best, cv_loss)


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


def _logreg(c: float, seed: int, balanced: bool = False) -> LogisticRegression:
    weight = "balanced" if balanced else None
    return LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight=weight)


def _cv_loss(
    z: np.ndarray, y: np.ndarray, c: float, folds: int, seed: int, n_classes: int, balanced: bool
) -> float:
    losses = []
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for tr, va in split.split(z, y):
        model = _logreg(c, seed, balanced).fit(z[tr], y[tr])
        proba = np.zeros((len(va), n_classes))
        proba[:, model.classes_] = model.predict_proba(z[va])
        proba /= proba.sum(1, keepdims=True)
        losses.append(log_loss(y[va], proba, labels=list(range(n_classes))))
    return float(np.mean(losses))


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


def load_head(model: torch.nn.Module, head: LinearHead) -> None:
    """Copy a fitted head into the model's classifier layer (which must have the head's shape)."""
    fc = model.get_classifier()
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(head.weight))
        fc.bias.copy_(torch.from_numpy(head.bias))
