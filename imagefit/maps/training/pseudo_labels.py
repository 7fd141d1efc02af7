"""Pseudo-labels of unlabelled pixels: each class's most confident share (class-balanced self-training).

A fixed confidence threshold (FixMatch's 0.9) keeps the pixels of whatever class the model is surest
of. On imagery unlike the training tiles, that is the class it over-predicts: a U-Net trained on
tiles 1-5 and 8 calls 52 % of tile 6 Water (40 % is), and at 0.9 Water is 88 % of the pseudo-labels,
so training on them spreads the error. Lowering the threshold of the classes less often confident
(FlexMatch) made it worse there: the rare Unlabeled class, confidently predicted on almost nothing,
got the lowest threshold and spread over 11 % of tile 6 (bench/README.md, issue 28).

Class-balanced self-training (CBST, Zou et al. 2018, made for segmentation across domains) takes
instead, of the pixels predicted as each class, that class's most confident `share`: its threshold
is the (1 - share) quantile of its own confidences, followed as a moving average over the steps.
The pseudo-labels keep the classes' predicted proportions, and each class is labelled where the
model is surest of it relative to that class. Their loss weighs every pixel alike: class weights
would multiply the errors of a rare class's pseudo-labels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from imagefit.errors import OptionError
from imagefit.maps.training.crops import IGNORED

MIN_PIXELS = 64  # a class predicted on fewer pixels of a batch leaves its threshold where it was


class BalancedThresholds:
    """Per-class confidence thresholds keeping each class's most confident `share` of the pixels
    predicted as it: the (1 - share) quantile of its confidences, a moving average (`momentum`)."""

    def __init__(self, classes: int, share: float = 0.5, momentum: float = 0.9):
        if not 0 < share <= 1:
            raise OptionError(f"--pseudo-share must be in (0, 1], got {share}")
        self.share, self.momentum = share, momentum
        self.thresholds = np.full(classes, np.nan)  # nan: the class was never predicted enough

    def update(self, confidence: torch.Tensor, predicted: torch.Tensor, valid: torch.Tensor) -> None:
        """Move each class's threshold toward the quantile of its confidences among `valid` pixels."""
        for k in range(len(self.thresholds)):
            c = confidence[valid & (predicted == k)]
            if c.numel() < MIN_PIXELS:
                continue
            rank = min(c.numel(), int((1 - self.share) * c.numel()) + 1)  # `share` of them at or above
            q = float(c.float().kthvalue(rank).values)
            old = self.thresholds[k]
            self.thresholds[k] = q if np.isnan(old) else self.momentum * old + (1 - self.momentum) * q

    def values(self) -> np.ndarray:
        """The threshold of every class; above any probability (1.01) for a class not yet measured."""
        return np.where(np.isnan(self.thresholds), 1.01, self.thresholds)


def pseudo_targets(
    logits: torch.Tensor, keep: torch.Tensor, thresholds: BalancedThresholds
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets (n, H, W) of the pixels `keep`s whose top class is at least as probable as its
    threshold (IGNORED elsewhere), after counting them into `thresholds`; and the confidences."""
    confidence, predicted = F.softmax(logits.float(), dim=1).max(1)
    thresholds.update(confidence, predicted, keep)
    limit = torch.as_tensor(thresholds.values(), dtype=confidence.dtype, device=confidence.device)
    sure = keep & (confidence >= limit[predicted])
    return torch.where(sure, predicted, torch.full_like(predicted, IGNORED)), confidence


def pseudo_label_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the pseudo-labelled pixels over all the pixels of the batch (FixMatch's mean:
    few labelled pixels, a small loss), every pixel weighing alike."""
    total = F.cross_entropy(logits.float(), targets, ignore_index=IGNORED, reduction="sum")
    return total / targets.numel()
