"""Map metrics against a label raster: pixel accuracy, per-class IoU and their mean (mIoU)."""

from __future__ import annotations

import numpy as np

from imagefit.errors import DataError


def confusion(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (truth, predicted) over pixels that have both a prediction and a label (both >= 0)."""
    if pred.shape != truth.shape:
        raise DataError(
            f"the map is {pred.shape[1]}x{pred.shape[0]} but the labels are {truth.shape[1]}x{truth.shape[0]}"
        )
    both = (pred >= 0) & (truth >= 0)
    codes = truth[both].astype(np.int64) * num_classes + pred[both]
    return np.bincount(codes, minlength=num_classes**2).reshape(num_classes, num_classes)


def map_metrics(pred: np.ndarray, truth: np.ndarray, classes: list[str]) -> dict:
    """`{"pixel_accuracy", "miou", "iou": {class: IoU or None}, "pixels"}` of a map against its labels.

    A class absent from both the labels and the map has no IoU (None) and is left out of the mean.
    """
    return scores_of_confusion(confusion(pred, truth, len(classes)), classes)


def scores_of_confusion(cm: np.ndarray, classes: list[str]) -> dict:
    """Pixel accuracy, per-class IoU and mIoU of a (truth, predicted) confusion matrix.

    Pooled scores over many tiles come from their summed confusion matrices, never from a mean of
    per-tile numbers.
    """
    cm = np.asarray(cm, np.int64)
    total = int(cm.sum())
    if total == 0:
        raise DataError("no pixel has both a prediction and a label: nothing to compare")
    hits = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - hits
    iou = {name: (float(hits[k] / union[k]) if union[k] else None) for k, name in enumerate(classes)}
    scored = [v for v in iou.values() if v is not None]
    return {
        "pixel_accuracy": float(hits.sum() / total),
        "miou": float(np.mean(scored)),
        "iou": iou,
        "pixels": total,
        "confusion": cm.tolist(),
    }
