"""Pseudo-labels of unlabelled pixels: the confident predictions, with a threshold that adapts per class.

A fixed threshold (FixMatch's 0.9) keeps mostly the classes the model is already sure of, the large
ones, and a rare class is swallowed: its pixels are seldom confident, so never pseudo-labelled, so
never learned on the new imagery. FlexMatch's answer, followed here: each class's threshold is
scaled by how well it is learned, measured as its share of the confident predictions (a moving
average), mapped by x / (2 - x); the best-learned class keeps the base threshold, the others are
lowered toward a floor. The pseudo-labelled pixels' loss weighs classes as the labelled loss does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from imagefit.errors import OptionError
from imagefit.maps.training.crops import IGNORED

FLOOR = 0.5  # no class's threshold goes below this


class AdaptiveThresholds:
    """Per-class confidence thresholds: `base` for the class most often confidently predicted, lower
    (to `floor`) for classes less learned; `momentum` of the moving average of the classes' shares."""

    def __init__(self, classes: int, base: float = 0.9, floor: float = FLOOR, momentum: float = 0.99):
        if not 0 < base < 1:
            raise OptionError(f"--pseudo-threshold must be in (0, 1), got {base}")
        self.base, self.floor, self.momentum = base, min(floor, base), momentum
        self.learned = np.zeros(classes)  # moving average share of pixels confidently of each class

    def update(self, confidence: torch.Tensor, predicted: torch.Tensor, valid: torch.Tensor) -> None:
        """Count, among the `valid` pixels, those predicted over the base threshold, per class."""
        n = max(int(valid.sum()), 1)
        sure = predicted[valid & (confidence >= self.base)]
        share = torch.bincount(sure.flatten().cpu(), minlength=len(self.learned)).numpy() / n
        if not self.learned.any():
            self.learned = share.astype(np.float64)
        else:
            self.learned = self.momentum * self.learned + (1 - self.momentum) * share

    def values(self) -> np.ndarray:
        """The threshold of every class (all `base` before anything was counted)."""
        top = self.learned.max()
        if top <= 0:
            return np.full(len(self.learned), self.base)
        beta = self.learned / top
        return np.maximum(self.floor, beta / (2 - beta) * self.base)


def pseudo_targets(
    logits: torch.Tensor, keep: torch.Tensor, thresholds: AdaptiveThresholds
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets (n, H, W) of the pixels `keep`s whose top class is at least as probable as its
    threshold (IGNORED elsewhere), after counting them into `thresholds`; and the confidences."""
    confidence, predicted = F.softmax(logits.float(), dim=1).max(1)
    thresholds.update(confidence, predicted, keep)
    limit = torch.as_tensor(thresholds.values(), dtype=confidence.dtype, device=confidence.device)
    sure = keep & (confidence >= limit[predicted])
    return torch.where(sure, predicted, torch.full_like(predicted, IGNORED)), confidence


def pseudo_label_loss(
    logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy of the pseudo-labelled pixels over all the pixels of the batch (FixMatch's mean:
    few confident pixels, a small loss), classes weighted by `weight` (mean weight 1)."""
    if weight is not None:
        weight = (weight / weight[weight > 0].mean()).to(logits.device, torch.float32)
    total = F.cross_entropy(logits.float(), targets, weight, ignore_index=IGNORED, reduction="sum")
    return total / targets.numel()
