"""Multi-label label issues: out-of-fold probabilities per label, then cleanlab's multi-label filter.

The multi-label linear head of `imagefit train` chooses C and each label's threshold; its
out-of-fold probabilities at that C (a head that never saw the image) go to cleanlab's
multi-label `find_label_issues`. An image is listed when cleanlab flags it or when the
labels predicted out of fold differ from its given labels, worst label quality first.
"""

from __future__ import annotations

import numpy as np

from imagefit.audit.labels import LabelIssues, worst_first
from imagefit.errors import DataError
from imagefit.train.heads import FOLDS, fit_multilabel_head, out_of_fold

MIN_IMAGES = 2 * FOLDS  # the head's cross-validation needs this many labelled images


def multilabel_issues(
    x: np.ndarray, sets: list[tuple[int, ...]], n_classes: int, seed: int = 0
) -> LabelIssues:
    """Cross-validate the multi-label head on `x`; rank the images cleanlab flags or the folds contradict."""
    from cleanlab.multilabel_classification import get_label_quality_scores
    from cleanlab.multilabel_classification.filter import find_label_issues
    from threadpoolctl import threadpool_limits

    if len(sets) < MIN_IMAGES:
        raise DataError(f"a multi-label audit needs at least {MIN_IMAGES} labelled images, got {len(sets)}")
    y = np.zeros((len(sets), n_classes), np.int64)
    for i, labels in enumerate(sets):
        y[i, list(labels)] = 1
    lists = [list(labels) for labels in sets]
    with threadpool_limits(1):  # many small fits: one BLAS thread each
        head = fit_multilabel_head(x, y, seed, progress=False)
        z = (x - x.mean(0)) / (x.std(0) + 1e-6)
        probs = out_of_fold(z, y, head.C, seed, balanced=False)
        flagged = find_label_issues(lists, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
        quality = get_label_quality_scores(lists, probs)
    predicted = probs >= head.thresholds
    order, mask = worst_first(np.asarray(flagged, np.int64), (predicted != y.astype(bool)).any(1), quality)
    suggested = [tuple(np.flatnonzero(row).tolist()) for row in predicted]
    return LabelIssues(order, mask, quality, suggested, probs, FOLDS, head.C)
