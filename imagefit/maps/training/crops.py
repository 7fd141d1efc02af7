"""Labelled crops of tiles for training backbones densely: every patch position of a crop is a target.

A backbone maps a tile in one pass over large windows (`DenseBackbone`), so it is trained on that
same computation: a crop of `crop` pixels gives logits for its (crop - P + 1)^2 patch positions, and
each position's target is the class of its patch's centre pixel (-1 where that pixel is ignored).
One crop thus trains thousands of positions, and the function trained is the one that maps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from imagefit.errors import DataError, OptionError
from imagefit.maps.inputs.tileset import TileSet
from imagefit.maps.mapping.symmetries import dihedral
from imagefit.maps.training.patches import PatchBatches, fixed_batches, to_tensor

IGNORED = -1  # target of positions whose centre pixel has no class


class CropSource:
    """Tiles held in memory, cut into labelled crops of `crop` pixels for patches of `patch`."""

    def __init__(self, tiles: TileSet, refs: Sequence[str], crop: int, patch: int):
        if not refs:
            raise DataError("no refs given: name at least one tile")
        if patch > crop:
            raise OptionError(f"crop {crop} must be at least the patch size {patch}")
        self.tiles, self.crop, self.patch = tiles, crop, patch
        self.images, self.labels = [], []
        for ref in refs:
            image, index = tiles.read(ref)
            if min(index.shape) < crop:
                raise DataError(
                    f"tile {ref} ({index.shape[1]}x{index.shape[0]} pixels) is smaller than crop {crop}"
                )
            self.images.append(image)
            self.labels.append(index.astype(np.int16))  # compact: classes and -1 (ignored)
        self.by_class = _pixels_by_class(self.labels, len(tiles.classes))
        if not self.by_class:
            raise DataError(f"tiles {', '.join(refs)} hold no labelled pixel")
        self.sizes = np.array([lab.size for lab in self.labels], np.float64)
        # labelled pixels, each the centre of some patch position
        self.positions = int(sum(len(flat) for _, flat in self.by_class))

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        balance: bool = False,
        augment: bool = False,
        jitter: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`n` random crops (n, crop, crop, bands) uint8 and their position targets (n, rows, cols).

        Crops are placed uniformly (tiles weighted by area), or with `balance` centred on a pixel of
        a class drawn uniformly among those present; `augment` turns each by one of the 8 symmetries
        of the square (aerial views have no 'up'), pixels and labels together; `jitter` scales each
        crop's brightness, contrast and saturation by random factors in [1 - jitter, 1 + jitter]
        (scenes differ in light, season and sensor from tile to tile).
        """
        s = self.crop
        x = np.empty((n, s, s, self.images[0].shape[2]), np.uint8)
        y = np.empty((n, s - self.patch + 1, s - self.patch + 1), np.int64)
        for i in range(n):
            if balance:
                tiles, flat = self.by_class[rng.integers(len(self.by_class))]
                j = rng.integers(len(flat))
                t = tiles[j]
                h, w = self.labels[t].shape
                r, c = divmod(int(flat[j]), w)
                top, left = np.clip(r - s // 2, 0, h - s), np.clip(c - s // 2, 0, w - s)
            else:
                t = rng.choice(len(self.labels), p=self.sizes / self.sizes.sum())
                h, w = self.labels[t].shape
                top, left = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            pixels = self.images[t][top : top + s, left : left + s]
            labels = self.labels[t][top : top + s, left : left + s]
            if augment:
                k = int(rng.integers(8))
                pixels, labels = dihedral(pixels, k), dihedral(labels, k)
            if jitter:
                pixels = colour_jitter(pixels, jitter, rng)
            x[i], y[i] = pixels, position_targets(labels, self.patch)  # int16 -> int64
        return x, y


def colour_jitter(pixels: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """A crop (rows, cols, bands) uint8 with its brightness, contrast and (3 bands or more) colour
    saturation each scaled by a random factor in [1 - amount, 1 + amount]."""
    b, c, s = rng.uniform(1 - amount, 1 + amount, 3)
    x = pixels.astype(np.float32) * b
    x = (x - x.mean()) * c + x.mean()
    if x.shape[2] >= 3:
        grey = x[..., :3].mean(axis=2, keepdims=True)
        x[..., :3] = (x[..., :3] - grey) * s + grey
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def _pixels_by_class(labels: list[np.ndarray], n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each class present: the (tile, flat pixel index) of its pixels, in tile and scan order."""
    out = []
    for k in range(n):
        found = [np.flatnonzero(lab == k).astype(np.int32) for lab in labels]
        if sum(len(f) for f in found):
            tiles = np.concatenate([np.full(len(f), t, np.int16) for t, f in enumerate(found)])
            out.append((tiles, np.concatenate(found)))
    return out


def position_targets(labels: np.ndarray, patch: int) -> np.ndarray:
    """The target of every patch position of a labelled crop: its centre pixel's class."""
    c = patch // 2
    rows, cols = labels.shape[0] - patch + 1, labels.shape[1] - patch + 1
    return labels[c : c + rows, c : c + cols]


class CropBatches(PatchBatches):
    """Epochs of `steps` random batches (x, targets) of crops, for the training loop; `jitter` as
    CropSource.sample takes it."""

    def __init__(self, *args, jitter: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.jitter = jitter

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps):
            x, y = self.source.sample(self.batch_size, self.rng, self.balance, self.augment, self.jitter)
            yield to_tensor(x, self.mean, self.std), torch.from_numpy(y)


def fixed_crop_batches(
    tiles: TileSet, ref: str, crop: int, patch: int, n: int, batch_size: int, data_config: dict, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`n` random crops of a tile drawn once, as normalised batches with targets (validation data)."""
    x, y = CropSource(tiles, [ref], crop, patch).sample(n, np.random.default_rng(seed))
    return fixed_batches(x, y, batch_size, data_config)


class PositionLoss(torch.nn.Module):
    """Cross-entropy averaged over the labelled positions of a batch (0 when none is labelled);
    with `weight`, each position counts as its class's weight (a weighted mean, as PyTorch's)."""

    def __init__(self, weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        f = torch.nn.functional
        total = f.cross_entropy(logits, targets, self.weight, ignore_index=IGNORED, reduction="sum")
        labelled = targets[targets >= 0]
        if self.weight is None:
            return total / max(labelled.numel(), 1)
        return total / self.weight[labelled].sum().clamp(min=1e-12)
