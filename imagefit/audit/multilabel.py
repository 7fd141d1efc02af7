"""Multi-label label issues: out-of-fold probabilities per label, then cleanlab's multi-label filter.

The multi-label linear head of `imagefit train` chooses C and each label's threshold; its
out-of-fold probabilities at that C (a head that never saw the image) go to cleanlab's
multi-label `find_label_issues`. An image is listed when cleanlab flags it or when the
labels predicted out of fold differ from its given labels, worst label quality first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imagefit.audit.findings import LABEL_ISSUE, Finding
from imagefit.audit.items import LabelledImages
from imagefit.errors import DataError
from imagefit.train.heads import FOLDS, fit_multilabel_head, out_of_fold

MIN_IMAGES = 2 * FOLDS  # the head's cross-validation needs this many labelled images


@dataclass
class MultiLabelIssues:
    """Images whose given labels disagree with confident out-of-fold predictions."""

    indices: np.ndarray  # flagged by cleanlab or predicted otherwise out of fold, worst first
    flagged: np.ndarray  # (n,) bool: flagged by cleanlab's multi-label find_label_issues
    quality: np.ndarray  # (n,) cleanlab's multi-label quality score, 0 (surely wrong) .. 1
    suggested: list[tuple[int, ...]]  # the labels predicted out of fold for every image
    probabilities: np.ndarray  # (n, k) out-of-fold probability of each label
    folds: int
    C: float


def multilabel_issues(
    x: np.ndarray, sets: list[tuple[int, ...]], n_classes: int, seed: int = 0
) -> MultiLabelIssues:
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
    mask = np.zeros(len(sets), bool)
    mask[np.asarray(flagged, np.int64)] = True
    predicted = probs >= head.thresholds
    candidates = np.flatnonzero(mask | (predicted != y.astype(bool)).any(1))
    order = candidates[np.argsort(quality[candidates], kind="stable")]
    suggested = [tuple(np.flatnonzero(row).tolist()) for row in predicted]
    return MultiLabelIssues(order, mask, quality, suggested, probs, FOLDS, head.C)


def multilabel_findings(items: LabelledImages, kept: np.ndarray, issues: MultiLabelIssues) -> list[Finding]:
    """A label_issue finding per listed image: its given labels and the labels predicted out of fold."""
    out = []
    for i in issues.indices:
        j = kept[i]
        out.append(
            Finding(
                LABEL_ISSUE,
                items.relative(items.paths[j]),
                given=items.given(j),
                suggested=items.names(issues.suggested[i]),
                score=float(issues.quality[i]),
                note="cleanlab: label issue" if issues.flagged[i] else "out-of-fold prediction disagrees",
            )
        )
    return out
