"""Learning from the unlabelled imagery of the area to map (`map-train --unlabelled DIR|GLOB`).

A GIS analyst has the imagery of the region to be mapped before mapping it; its look (light,
season, sensor, vegetation) is what a model trained elsewhere gets wrong. Two standard
semi-supervised methods train a decoder on it beside the labelled tiles, both from confident
pseudo-labels (`imagefit.maps.training.pseudo_labels`) of weak views taught to strong views:

- `fixmatch` (FixMatch): the model itself, in inference mode, labels a weakly augmented crop
  (a rotation or mirror image); the same crop, strongly augmented (colour jitter, noise, a cut-out
  box), is trained to those labels where they are confident.
- `mean-teacher`: the labels come from an exponential moving average of the model's weights (a
  steadier teacher), the rest as FixMatch.

The unlabelled term waits for a warm-up (WARMUP of the planned steps: the model must first learn
from labels), then its weight ramps up over RAMP. Only the images are read: their folders may hold
labels, which are never opened.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from imagefit.errors import DataError, OptionError
from imagefit.maps.inputs.rasters import read_image
from imagefit.maps.inputs.sources import collect_tiles
from imagefit.maps.mapping.symmetries import dihedral
from imagefit.maps.training.crops import colour_jitter
from imagefit.maps.training.patches import to_tensor
from imagefit.maps.training.pseudo_labels import BalancedThresholds, pseudo_label_loss, pseudo_targets
from imagefit.train.engine.stages import frozen_norms_to_eval

log = logging.getLogger(__name__)

METHODS = ("fixmatch", "mean-teacher")
WARMUP, RAMP = 0.1, 0.2  # shares of the planned training steps: labels only, then the weight ramps up
STRONG_JITTER, NOISE = 0.5, 8.0  # strong view: colour factors in [0.5, 1.5], Gaussian noise (grey levels)
TEACHER_DECAY = 0.99


class UnlabelledImages:
    """Images without labels (files, folders or glob patterns) in memory, cut into random crops."""

    def __init__(self, inputs: str | Sequence[str], crop: int, bands: Sequence[int] | None = None):
        paths = collect_tiles([inputs] if isinstance(inputs, str) else list(inputs))
        self.crop, self.paths, self.images, self.valid = crop, [], [], []
        for path in paths:
            pixels, valid = read_image(path, None, bands)  # the image only: never a label file
            if min(pixels.shape[:2]) < crop:
                log.info("unlabelled image %s is smaller than the %d-pixel crops: left out", path, crop)
                continue
            self.paths.append(path)
            self.images.append(pixels)
            self.valid.append(valid)
        if not self.images:
            raise DataError(
                f"no unlabelled image of at least {crop}x{crop} pixels in {', '.join(map(str, paths))}"
            )
        self.sizes = np.array([im.shape[0] * im.shape[1] for im in self.images], np.float64)

    @property
    def bands(self) -> int:
        return self.images[0].shape[2]

    def sample(self, n: int, rng: np.random.Generator, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """`n` crops (n, crop, crop, bands) uint8 placed uniformly (images weighted by area), each turned
        by a random symmetry of the square with `augment`, and where their pixels are valid."""
        s = self.crop
        x = np.empty((n, s, s, self.bands), np.uint8)
        ok = np.empty((n, s, s), bool)
        for i in range(n):
            t = rng.choice(len(self.images), p=self.sizes / self.sizes.sum())
            h, w = self.images[t].shape[:2]
            top, left = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            pixels, valid = (
                self.images[t][top : top + s, left : left + s],
                self.valid[t][top : top + s, left : left + s],
            )
            k = int(rng.integers(8)) if augment else 0
            x[i], ok[i] = dihedral(pixels, k), dihedral(valid, k)
        return x, ok


def strong_view(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Crops strongly augmented in colour only (so that pixels stay where the weak view has them):
    brightness, contrast and saturation jitter, Gaussian noise, and a cut-out box filled with the
    crop's mean colour; and where the boxes are (their pixels are not pseudo-labelled)."""
    out = np.empty_like(x)
    cut = np.zeros(x.shape[:3], bool)
    s = x.shape[1]
    for i, crop in enumerate(x):
        pixels = colour_jitter(crop, STRONG_JITTER, rng).astype(np.float32)
        pixels += rng.normal(0, NOISE, pixels.shape).astype(np.float32)
        side = int(rng.integers(s // 8, s // 3 + 1))
        top, left = rng.integers(0, s - side + 1), rng.integers(0, s - side + 1)
        pixels[top : top + side, left : left + side] = pixels.reshape(-1, pixels.shape[2]).mean(0)
        cut[i, top : top + side, left : left + side] = True
        out[i] = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)
    return out, cut


class FixMatch:
    """The unlabelled images' loss at each training step (a Trainer's `aux_loss`), FixMatch's way."""

    def __init__(
        self, images: UnlabelledImages, data_config: dict, batch_size: int, weight: float = 1.0,
        share: float = 0.5, seed: int = 0,
    ):  # fmt: skip
        if batch_size < 1 or not weight > 0:
            raise OptionError("--unlabelled-batch must be at least 1 and --unlabelled-weight above 0")
        self.images, self.batch_size, self.weight = images, batch_size, weight
        self.mean, self.std = data_config["mean"], data_config["std"]
        self.thresholds: BalancedThresholds | None = None
        self.share = share
        BalancedThresholds(1, share)  # checks the share now, not at the first step
        self.rng = np.random.default_rng([seed, 2028])
        self._totals = np.zeros(3)  # loss sum, steps, pseudo-labelled share sum

    def ramp(self, progress: float) -> float:
        """The unlabelled loss's weight at a point of training: 0 in the warm-up, then up to `weight`."""
        return self.weight * float(np.clip((progress - WARMUP) / RAMP, 0.0, 1.0))

    def __call__(self, model: nn.Module, progress: float) -> torch.Tensor | None:
        weight = self.ramp(progress)
        if weight == 0:
            return None
        device = next(model.parameters()).device
        x, valid = self.images.sample(self.batch_size, self.rng)
        strong, cut = strong_view(x, self.rng)
        logits = self.teacher_logits(model, self._tensor(x, device))
        if self.thresholds is None:
            self.thresholds = BalancedThresholds(logits.shape[1], self.share)
        keep = torch.from_numpy(valid & ~cut).to(device)
        targets, _ = pseudo_targets(logits, keep, self.thresholds)
        loss = pseudo_label_loss(model(self._tensor(strong, device)), targets)
        share = float((targets >= 0).float().mean())
        self._totals += (float(loss.detach()), 1, share)
        return weight * loss

    def teacher_logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The weak view's logits by the model itself, in inference mode (as it will map)."""
        return _inference(model, x)

    def epoch_logs(self) -> dict:
        """The epoch's mean unlabelled loss and share of pseudo-labelled pixels (for the history)."""
        loss, steps, share = self._totals
        self._totals = np.zeros(3)
        if not steps:
            return {"unlabelled_loss": None, "pseudo_labelled": None}
        return {"unlabelled_loss": loss / steps, "pseudo_labelled": share / steps}

    def _tensor(self, x: np.ndarray, device: torch.device) -> torch.Tensor:
        t = to_tensor(x, self.mean, self.std).to(device)
        return t.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else t


class MeanTeacher(FixMatch):
    """FixMatch with pseudo-labels from an exponential moving average of the model's weights."""

    teacher: nn.Module | None = None

    def teacher_logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        student = getattr(model, "module", model)  # a distributed run's wrapped model
        if self.teacher is None:  # begins as the student at the end of the warm-up
            self.teacher = copy.deepcopy(student).eval()
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        else:
            with torch.no_grad():
                for t, s in zip(self.teacher.parameters(), student.parameters(), strict=True):
                    t.lerp_(s.detach(), 1 - TEACHER_DECAY)
                for t, s in zip(self.teacher.buffers(), student.buffers(), strict=True):
                    t.copy_(s)
        with torch.no_grad():
            return self.teacher(x)


def _inference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The logits of `model` in eval mode (BatchNorm's running statistics), then back to training."""
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train()
        frozen_norms_to_eval(model)


def semi_supervised(method: str, images: UnlabelledImages, data_config: dict, **options) -> FixMatch:
    """The aux loss of `method` (fixmatch, mean-teacher) on unlabelled `images`."""
    if method not in METHODS:
        raise OptionError(f"--semi must be one of {', '.join(METHODS)}, got {method!r}")
    return (FixMatch if method == "fixmatch" else MeanTeacher)(images, data_config, **options)
