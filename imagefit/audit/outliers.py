"""Outliers: images far from every other image in embedding space (cleanlab's OutOfDistribution)."""

from __future__ import annotations

import numpy as np

NEIGHBOURS = 10
SPREAD = 5.0  # robust deviations beyond the median distance from which an image is an outlier
MAX_SHARE = 0.02  # never more than this share of the images is called an outlier


def outlier_scores(x: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Score of each image, 0 (far from everything) .. 1, from the mean distance to its k nearest."""
    from cleanlab.outlier import OutOfDistribution

    k = max(1, min(k, len(x) - 1))
    ood = OutOfDistribution(params={"k": k})
    return np.asarray(ood.fit_score(features=np.asarray(x, np.float32), verbose=False))


def flag_outliers(scores: np.ndarray, spread: float = SPREAD, max_share: float = MAX_SHARE) -> np.ndarray:
    """Indices of the outliers, lowest score first: far beyond the typical distance, at most a share.

    A score is exp(-distance / median distance), so -log(score) is the distance in units of the
    median one; an outlier lies `spread` robust deviations (scaled MAD) beyond the median there.
    """
    if len(scores) < 3:
        return np.zeros(0, np.int64)
    distance = -np.log(np.maximum(scores, 1e-300))
    median = np.median(distance)
    mad = 1.4826 * np.median(np.abs(distance - median)) + 1e-12
    beyond = np.flatnonzero(distance > median + spread * mad)
    ranked = beyond[np.argsort(scores[beyond], kind="stable")]
    return ranked[: int(max_share * len(scores))]
