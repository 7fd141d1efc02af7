"""Class weights for imbalanced folders: each class counts as much as the others in the training loss.

`auto` weighs class c by n / (k * n_c), scikit-learn's and Keras' "balanced" rule; validation
loss stays the plain one, so val_loss and the reported metrics mean what they mean elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def balanced_weights(labels: Sequence[int], n_classes: int) -> np.ndarray:
    """n / (k * n_c) for each class c present among `labels`; 0 for a class with no images."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def training_loss(
    labels: Sequence[int], n_classes: int, balanced: bool = False, label_smoothing: float = 0.0
) -> nn.Module:
    """Cross-entropy, weighted by class when `balanced` (`--class-weights auto`), with optional label
    smoothing."""
    if not balanced:
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    weight = torch.tensor(balanced_weights(labels, n_classes), dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
