"""Batches of decoded images from a list of files, decoded lazily by parallel workers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from imagefit.data.images import ImageReadError, open_image
from imagefit.data.transforms import decode_size, eval_transform


@dataclass
class Batch:
    """Images that decoded, their positions in the input list, and the files that did not."""

    indices: torch.Tensor
    images: torch.Tensor | None
    errors: list[tuple[int, str]]


class ImageFiles(TorchDataset):
    """Decodes one file per item; a file that fails yields its error instead of an image."""

    def __init__(self, paths: Sequence[Path], transform: Callable, min_size: int | None = None):
        self.paths = list(paths)
        self.transform = transform
        self.min_size = min_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return i, self.transform(open_image(self.paths[i], self.min_size)), None
        except ImageReadError as exc:
            return i, None, str(exc)


def collate(items: list[tuple[int, torch.Tensor | None, str | None]]) -> Batch:
    """Stack the decoded images of a batch and keep the errors apart."""
    good = [(i, x) for i, x, err in items if err is None]
    errors = [(i, err) for i, _, err in items if err is not None]
    indices = torch.tensor([i for i, _ in good], dtype=torch.long)
    images = torch.stack([x for _, x in good]) if good else None
    return Batch(indices, images, errors)


def default_workers() -> int:
    """Decode workers: one per core beyond the first, at least one."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def iterate_batches(
    paths: Sequence[Path],
    data_config: dict,
    batch_size: int = 32,
    workers: int | None = None,
    transform: Callable | None = None,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Yield batches of preprocessed images in input order; memory holds a few batches at most."""
    dataset = ImageFiles(paths, transform or eval_transform(data_config), min_size=decode_size(data_config))
    workers = default_workers() if workers is None else workers
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers if len(dataset) > batch_size else 0,
        collate_fn=collate,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers > 0 and len(dataset) > batch_size else None,
    )
    yield from loader
