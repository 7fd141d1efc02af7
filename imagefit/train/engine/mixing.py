"""Mixup: training on blends of two images with the same blend of their labels (Zhang et al., 2018).

The blend weight is drawn from Beta(alpha, alpha) once per batch, and each image is paired with
another of the batch (the batch in reverse order, as timm pairs them). Targets become class
probabilities, which PyTorch's cross-entropy takes as they are (with class weights and label
smoothing too). Multi-label targets (rows of 0/1 per label) are blended as they are, and binary
cross-entropy takes the blend. Validation always scores the plain labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from imagefit.errors import OptionError


def check_mixing(mixup: float, smoothing: float) -> None:
    """Mixup's alpha (0: off) and the label smoothing share, checked before any data is read."""
    if mixup < 0:
        raise OptionError(f"--mixup is a Beta distribution's alpha, 0 (off) or more, got {mixup}")
    if not 0 <= smoothing < 1:
        raise OptionError(f"--label-smoothing must be in [0, 1), got {smoothing}")


class MixedBatches:
    """The batches (x, y) of another iterable as blended images with class-probability targets."""

    def __init__(self, batches: Iterable, n_classes: int, alpha: float, seed: int = 0):
        self.batches, self.n_classes, self.alpha, self.seed = batches, n_classes, alpha, seed
        self.rng = np.random.default_rng([seed, 0])

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __getattr__(self, name: str):  # distribute, sharded, skipped: those of the wrapped batches
        if name == "batches":
            raise AttributeError(name)
        return getattr(self.batches, name)

    def set_epoch(self, epoch: int) -> None:
        """Blend weights drawn anew from (seed, epoch): a resumed run blends as the original did."""
        self.rng = np.random.default_rng([self.seed, epoch])
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.batches:
            t = y.to(x.dtype) if y.is_floating_point() else F.one_hot(y, self.n_classes).to(x.dtype)
            if len(y) > 1:
                lam = float(self.rng.beta(self.alpha, self.alpha))
                x = lam * x + (1 - lam) * x.flip(0)
                t = lam * t + (1 - lam) * t.flip(0)
            yield x, t
