"""The training loss of multi-label data: binary cross-entropy per label, with optional positive weights.

`--class-weights auto` weighs each label's positives by (negatives / positives) on the training
split, PyTorch's `pos_weight`, so that a rare label's misses cost as much in total as its false
alarms; the weight is clipped to POSITIVE_WEIGHT_RANGE so that a label seen on a handful of images
does not dominate the loss. Label smoothing moves each target share `s` towards 1/2 (t -> t (1 - s)
+ s / 2); mixup's blended targets are taken as they are. Validation loss stays the plain one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

POSITIVE_WEIGHT_RANGE = (0.1, 10.0)


def positive_weights(label_sets: Sequence[Sequence[int]], n_labels: int) -> np.ndarray:
    """Per label, its negatives over its positives among `label_sets`, clipped (1 for an absent label)."""
    positives = np.zeros(n_labels)
    for labels in label_sets:
        positives[list(labels)] += 1
    negatives = len(label_sets) - positives
    ratio = np.divide(negatives, positives, out=np.ones(n_labels), where=positives > 0)
    return np.clip(ratio, *POSITIVE_WEIGHT_RANGE)


class MultiLabelLoss(nn.Module):
    """Binary cross-entropy with logits, averaged over images and labels, on (smoothed) 0/1 targets."""

    def __init__(self, pos_weight: torch.Tensor | None = None, smoothing: float = 0.0):
        super().__init__()
        self.smoothing = smoothing
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype)
        if self.smoothing:
            target = target * (1 - self.smoothing) + self.smoothing / 2
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)


def multilabel_training_loss(
    label_sets: Sequence[Sequence[int]], n_labels: int, balanced: bool = False, smoothing: float = 0.0
) -> MultiLabelLoss:
    """The loss to train with: positive weights when `balanced` (`--class-weights auto`), plain otherwise."""
    if not balanced:
        return MultiLabelLoss(smoothing=smoothing)
    weight = torch.tensor(positive_weights(label_sets, n_labels), dtype=torch.float32)
    return MultiLabelLoss(weight, smoothing)
