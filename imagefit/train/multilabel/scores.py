"""What the training loop reports each epoch on multi-label data, in place of single-label accuracy.

`acc` becomes the share of label decisions that are right at probability 0.5 (fastai's
`accuracy_multi`); validation adds mAP (threshold-free) and samples-F1 at 0.5, since the per-label
thresholds are only chosen after training. The best epoch is the one with the highest val_mAP.
"""

from __future__ import annotations

import numpy as np
import torch

from imagefit.evaluate.multilabel_metrics import multilabel_scores

MONITOR = "val_mAP"  # the best epoch of a multi-label run


def count_label_hits(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Summed over images: the share of each image's labels decided as its targets say (logit >= 0)."""
    right = (logits.float() >= 0) == (targets >= 0.5)
    return float(right.float().mean(1).sum())


class LabelScores:
    """Probabilities and targets of the validation batches, scored once all are in."""

    def __init__(self):
        self.probabilities: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []

    def add(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.probabilities.append(logits.float().sigmoid().cpu().numpy())
        self.targets.append((targets >= 0.5).cpu().numpy().astype(np.int64))

    def result(self, sharded: bool = False) -> dict:
        """{'mAP', 'samples_f1'} over every batch added (on every rank when `sharded`)."""
        if not self.targets:
            return {"mAP": None, "samples_f1": None}
        proba, y = np.concatenate(self.probabilities), np.concatenate(self.targets)
        if sharded:
            proba, y = _gathered(proba), _gathered(y)
        if not y.any():  # no label to rank: mAP is undefined
            return {"mAP": None, "samples_f1": None}
        scores = multilabel_scores(y, proba, 0.5)
        return {"mAP": scores["mAP"], "samples_f1": scores["samples_f1"]}


def _gathered(part: np.ndarray) -> np.ndarray:
    """Every rank's rows, in rank order."""
    import torch.distributed as dist

    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, part)
    return np.concatenate(parts)
