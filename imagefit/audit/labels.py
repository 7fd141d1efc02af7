"""Label issues: out-of-fold probabilities of the linear head, then confident learning (cleanlab)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from imagefit.errors import DataError
from imagefit.train.heads import fit_linear_head, label_issue_count

log = logging.getLogger(__name__)

MIN_PER_CLASS = 2  # images a class needs for any cross-validation at all


@dataclass
class LabelIssues:
    """Images whose given labels disagree with confident out-of-fold predictions."""

    indices: np.ndarray  # flagged by cleanlab or predicted otherwise out of fold, worst first
    flagged: np.ndarray  # (n,) bool: flagged by cleanlab's (single- or multi-label) find_label_issues
    quality: np.ndarray  # (n,) label-quality score of every image, 0 (surely wrong) .. 1
    suggested: np.ndarray | list[tuple[int, ...]]  # (n,) most likely class, or labels predicted (multi-label)
    probabilities: np.ndarray  # (n, k) out-of-fold probabilities
    folds: int
    C: float


def worst_first(
    flagged: np.ndarray, disagrees: np.ndarray, quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(images flagged or predicted otherwise, worst label quality first; the flagged ones as a mask)."""
    mask = np.zeros(len(quality), bool)
    mask[flagged] = True
    candidates = np.flatnonzero(mask | disagrees)
    return candidates[np.argsort(quality[candidates], kind="stable")], mask


def choose_folds(labels: np.ndarray, classes: list[str], folds: int) -> int:
    """`folds`, or fewer (with a warning) when the smallest class has fewer images than that."""
    counts = np.bincount(labels, minlength=len(classes))
    if len(classes) < 2:
        raise DataError("an audit of labels needs at least two classes")
    smallest = int(counts.argmin())
    if counts[smallest] < MIN_PER_CLASS:
        raise DataError(
            f"class {classes[smallest]} has {counts[smallest]} image(s): cross-validation needs at least "
            f"{MIN_PER_CLASS} per class ({folds} for {folds} folds); add images or remove the class"
        )
    if counts[smallest] < folds:
        log.warning(
            "class %s has only %d images: cross-validating with %d folds instead of %d "
            "(%d folds need %d images in every class)",
            classes[smallest],
            counts[smallest],
            counts[smallest],
            folds,
            folds,
            folds,
        )
        return int(counts[smallest])
    return folds


def out_of_fold_probabilities(
    x: np.ndarray, y: np.ndarray, n_classes: int, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, float]:
    """(probabilities of each image from a head that never saw it, the regularisation C used).

    C is chosen once by `fit_linear_head` (as `imagefit train` chooses it); each fold then refits
    the same standardised logistic regression at that C without its held-out images.
    """
    head = fit_linear_head(x, y, n_classes, seed, progress=False)
    return fold_probabilities(x, y, n_classes, head.C, folds, seed), head.C


def fold_probabilities(
    x: np.ndarray, y: np.ndarray, n_classes: int, c: float, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold probabilities of a standardised logistic regression at a fixed C, stratified folds."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    probs = np.zeros((len(y), n_classes))
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, y):
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(z[train], y[train])
        probs[np.ix_(held, model.classes_)] = model.predict_proba(z[held])
    return probs / probs.sum(1, keepdims=True)


def find_label_issues(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flagged indices worst first, label-quality score of every image), by cleanlab."""
    from cleanlab.filter import find_label_issues as cleanlab_issues
    from cleanlab.rank import get_label_quality_scores

    quality = get_label_quality_scores(y, probs, method="self_confidence")
    flagged = cleanlab_issues(y, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    return np.asarray(flagged, np.int64), quality


def label_issues(
    x: np.ndarray, y: np.ndarray, classes: list[str], folds: int = 5, seed: int = 0
) -> LabelIssues:
    """Cross-validate the linear head on `x`; rank the images cleanlab flags or the folds contradict."""
    from threadpoolctl import threadpool_limits

    folds = choose_folds(y, classes, folds)
    with threadpool_limits(1):  # one BLAS thread: several fight badly on a busy 2-core machine
        probs, c = out_of_fold_probabilities(x, y, len(classes), folds, seed)
        flagged, quality = find_label_issues(probs, y)
    suggested = probs.argmax(1)
    order, mask = worst_first(flagged, suggested != y, quality)
    return LabelIssues(order, mask, quality, suggested, probs, folds, c)


def mislabelled_count(
    x: np.ndarray, y: np.ndarray, n_classes: int, c: float, folds: int = 3, seed: int = 0
) -> int:
    """How many training images look mislabelled, from a few folds at the C the linear head chose.

    For `imagefit train`'s one-line hint after `fit_linear_head` (three more fits); 0 when a class
    is too small to cross-validate.
    """
    from threadpoolctl import threadpool_limits

    counts = np.bincount(y, minlength=n_classes)
    folds = min(folds, int(counts[counts > 0].min()))
    if folds < 2 or (counts > 0).sum() < 2:
        return 0
    with threadpool_limits(1):
        return label_issue_count(fold_probabilities(x, y, n_classes, c, folds, seed), y)
