"""Labelled patches of tiles, in the seed's words: a patch's label is the class of its centre pixel.

`load_labelled_patches` loads patches into memory in scan order or shuffled; `generate_labelled_patches`
yields endless random batches; `PatchBatches` gives the training loop epochs of such batches as
normalised tensors, optionally class-balanced (each class equally likely, whatever its area).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from imagefit.errors import DataError, OptionError
from imagefit.maps.inputs.tileset import Roi, TileSet


class PatchSource:
    """The patch positions of some tiles on a grid of `step` pixels, with the pixels in memory.

    Positions are numbered globally across the tiles; positions whose centre pixel is ignored
    are left out.
    """

    def __init__(self, tiles: TileSet, refs: Sequence[str], patch_size: int, step: int = 1, roi=None):
        if patch_size < 1 or step < 1:
            raise OptionError(f"patch size and step must be at least 1, got {patch_size} and {step}")
        if not refs:
            raise DataError("no refs given: name at least one tile")
        self.tiles, self.refs, self.patch_size, self.step = tiles, list(refs), patch_size, step
        self.images, self.grids, labels = [], [], []
        for ref in self.refs:
            image, index = tiles.read(ref, roi)
            rows, cols = _grid(index.shape, patch_size, step, ref)
            c = patch_size // 2
            labels.append(index[rows[:, None] + c, cols[None, :] + c].ravel())
            self.images.append(image)
            self.grids.append(len(cols))
        self.offsets = np.cumsum([0, *[len(lab) for lab in labels]])
        centre = np.concatenate(labels)
        self.valid = np.flatnonzero(centre >= 0)
        self.labels = centre[self.valid].astype(np.int64)
        if not len(self.valid):
            raise DataError(f"tiles {', '.join(self.refs)} hold no labelled patch of {patch_size} pixels")

    def __len__(self) -> int:
        return len(self.valid)

    @property
    def positions(self) -> int:
        """Labelled patch positions."""
        return len(self.valid)

    def gather(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Patches (n, P, P, 3) uint8 and class indices (n,) of positions `items` (0..len-1)."""
        glob = self.valid[items]
        tile = np.searchsorted(self.offsets, glob, side="right") - 1
        bands = self.images[0].shape[2]
        patches = np.empty((len(items), self.patch_size, self.patch_size, bands), np.uint8)
        for t in np.unique(tile):
            rows, cols = np.divmod(glob[tile == t] - self.offsets[t], self.grids[t])
            view = sliding_window_view(self.images[t], (self.patch_size, self.patch_size), axis=(0, 1))
            patches[tile == t] = view[rows * self.step, cols * self.step].transpose(0, 2, 3, 1)
        return patches, self.labels[items]

    def sample(self, n: int, rng: np.random.Generator, balance: bool = False) -> np.ndarray:
        """`n` random positions; `balance` draws each class equally often (among the classes present)."""
        if not balance:
            return rng.integers(0, len(self), n)
        by_class = self._by_class()
        chosen = rng.integers(0, len(by_class), n)
        return np.array([by_class[k][rng.integers(len(by_class[k]))] for k in chosen], np.int64)

    def _by_class(self) -> list[np.ndarray]:
        if not hasattr(self, "_classes"):
            order = np.argsort(self.labels, kind="stable")
            _, starts = np.unique(self.labels[order], return_index=True)
            self._classes = np.split(order, starts[1:])
        return self._classes


def _grid(shape: tuple[int, int], patch: int, step: int, ref: str) -> tuple[np.ndarray, np.ndarray]:
    height, width = shape
    if patch > height or patch > width:
        raise DataError(f"patch size {patch} is larger than tile {ref} or its ROI ({width}x{height} pixels)")
    return np.arange(0, height - patch + 1, step), np.arange(0, width - patch + 1, step)


def _tileset(tiles: TileSet | str | Path, ignore: int | None) -> TileSet:
    return tiles if isinstance(tiles, TileSet) else TileSet(tiles, ignore)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Index labels as one-hot float32 rows, as the seed's Keras code used them."""
    return np.eye(num_classes, dtype=np.float32)[labels]


def load_class_names(tiles: TileSet | str | Path) -> list[str]:
    """The class names of a tiles folder's key, in the order of the labels' indices."""
    return _tileset(tiles, None).classes


def load_labelled_patches(
    refs: Sequence[str],
    patch_size: int,
    step: int = 1,
    limit: int | None = None,
    shuffle: bool = False,
    roi: Roi | None = None,
    *,
    tiles: TileSet | str | Path,
    ignore: int | None = None,
    labels: str = "index",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Patches (n, P, P, bands) uint8 of the tiles `refs` with the class of their centre pixel.

    In scan order (tile by tile, row by row, every `step` pixels), or shuffled with `seed`; at most
    `limit`; within `roi` ((x0, y0), (x1, y1)) when given. `labels='onehot'` gives one-hot rows.
    """
    source = PatchSource(_tileset(tiles, ignore), refs, patch_size, step, roi)
    n = len(source) if limit is None else min(limit, len(source))
    rng = np.random.default_rng(seed)
    items = rng.choice(len(source), n, replace=False) if shuffle else np.arange(n)
    patches, index = source.gather(items)
    return patches, _labels(index, labels, len(source.tiles.classes))


def generate_labelled_patches(
    refs: Sequence[str],
    patch_size: int,
    step: int = 1,
    batch_size: int = 32,
    shuffle: bool = True,
    *,
    tiles: TileSet | str | Path,
    ignore: int | None = None,
    balance: bool = False,
    labels: str = "index",
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless batches of labelled patches: random (optionally class-balanced), or in scan order."""
    source = PatchSource(_tileset(tiles, ignore), refs, patch_size, step)
    rng = np.random.default_rng(seed)
    start = 0
    while True:
        if shuffle:
            items = source.sample(batch_size, rng, balance)
        else:
            items = (start + np.arange(batch_size)) % len(source)
            start = (start + batch_size) % len(source)
        patches, index = source.gather(items)
        yield patches, _labels(index, labels, len(source.tiles.classes))


def _labels(index: np.ndarray, kind: str, num_classes: int) -> np.ndarray:
    if kind not in ("index", "onehot"):
        raise OptionError(f"labels must be 'index' or 'onehot', got {kind!r}")
    return one_hot(index, num_classes) if kind == "onehot" else index


def to_tensor(patches: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Patches (n, P, P, 3) uint8 as a normalised float tensor (n, 3, P, P)."""
    x = torch.from_numpy(patches).permute(0, 3, 1, 2).float().div_(255)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(m).div_(s).contiguous()


class PatchBatches:
    """Epochs of `steps` random batches (x, y) from a PatchSource (or, in CropBatches, a CropSource),
    for the training loop."""

    def __init__(
        self,
        source: PatchSource,
        steps: int,
        batch_size: int,
        data_config: dict,
        balance: bool = False,
        augment: bool = True,
        seed: int = 0,
    ):
        if steps < 1 or batch_size < 1:
            raise OptionError(f"steps and batch size must be at least 1, got {steps} and {batch_size}")
        self.source, self.steps, self.batch_size = source, steps, batch_size
        self.mean, self.std = data_config["mean"], data_config["std"]
        self.balance, self.augment = balance, augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps):
            patches, labels = self.source.gather(self.source.sample(self.batch_size, self.rng, self.balance))
            x = to_tensor(patches, self.mean, self.std)
            if self.augment:
                x = _dihedral(x, int(self.rng.integers(8)))
            yield x, torch.from_numpy(labels)


def fixed_batches(
    patches: np.ndarray, labels: np.ndarray, batch_size: int, data_config: dict
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Patches held in memory as a list of normalised batches (validation data)."""
    mean, std = data_config["mean"], data_config["std"]
    return [
        (to_tensor(patches[i : i + batch_size], mean, std), torch.from_numpy(labels[i : i + batch_size]))
        for i in range(0, len(labels), batch_size)
    ]


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 rotations and mirror images of a batch (aerial views have no 'up')."""
    x = torch.rot90(x, k % 4, dims=(2, 3))
    return x.flip(3).contiguous() if k >= 4 else x.contiguous()
