"""Batches of image files for the strategies that train for epochs, and their sizes."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from imagefit.data.folders import Sample
from imagefit.data.images import warn_skipped
from imagefit.data.loader import ImageFiles, collate, default_workers
from imagefit.data.transforms import decode_size
from imagefit.errors import DataError
from imagefit.models.small_cnn import min_input_size, parse_spec
from imagefit.train.engine.distributed import distributed_loader

log = logging.getLogger(__name__)

AUTO_SIZE_CAP = 128  # an automatic input size never exceeds this: scratch CNNs are for small images


class Batches:
    """(images, labels) batches of some samples; unreadable files are skipped and listed in `skipped`.

    With `n_labels` (multi-label data) the labels are rows of 0/1 floats, one column per label.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable,
        data_config: dict,
        skipped: dict[Path, str] | None = None,  # shared with other batches of the same files
        n_labels: int | None = None,
        **loader_options,
    ):
        self.samples = list(samples)
        if n_labels is None:
            self.labels = torch.tensor([s.label for s in self.samples], dtype=torch.long)
        else:
            self.labels = multi_hot([s.label_set for s in self.samples], n_labels)
        self.files = ImageFiles([s.path for s in self.samples], transform, min_size=decode_size(data_config))
        self.options = {"pin_memory": torch.cuda.is_available(), **loader_options}
        self.loader = DataLoader(self.files, collate_fn=collate, **self.options)
        self.skipped = {} if skipped is None else skipped
        self.sharded = False

    def distribute(self, shard: bool = True) -> None:
        """Give each rank of a distributed run its share, in batches that add up to the batch size.

        `shard=False` gives every image back to every rank (evaluation after training).
        """
        self.sharded = shard
        if shard:
            self.loader = distributed_loader(self.files, collate, self.options)
        else:
            self.loader = DataLoader(self.files, collate_fn=collate, **self.options)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle a distributed shard for `epoch` (ranks agree on the order)."""
        if hasattr(self.loader.sampler, "set_epoch"):
            self.loader.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            for i, reason in batch.errors:
                if self.samples[i].path not in self.skipped:
                    warn_skipped(self.samples[i].path, reason)
                    self.skipped[self.samples[i].path] = reason
            if batch.images is not None:
                yield batch.images, self.labels[batch.indices]


def multi_hot(label_sets: Sequence[Sequence[int]], n_labels: int) -> torch.Tensor:
    """(n, n_labels) float targets: 1 where the image carries the label."""
    targets = torch.zeros(len(label_sets), n_labels)
    for row, labels in enumerate(label_sets):
        targets[row, list(labels)] = 1.0
    return targets


def auto_image_size(samples: Sequence[Sample], arch: str, sample: int = 64) -> int:
    """The most common shorter side among the first images, capped at 128, at least what `arch` needs."""
    sides = Counter()
    for s in list(samples)[:sample]:
        try:
            with Image.open(s.path) as img:
                sides[min(img.size)] += 1
        except (OSError, ValueError):
            continue
    if not sides:
        raise DataError("no readable training images to take an image size from: check the files")
    side = min(sides.most_common(1)[0][0], AUTO_SIZE_CAP)
    size = max(side, min_input_size(parse_spec(arch)))
    log.info("image size %d x %d (set --image-size to change it)", size, size)
    return size


def loader_options(workers: int | None, n_images: int, batch_size: int) -> dict:
    """DataLoader settings: decode workers unless the images fit in one batch."""
    workers = default_workers() if workers is None else workers
    if workers == 0 or n_images <= batch_size:
        return {"num_workers": 0}
    return {"num_workers": workers, "persistent_workers": True, "prefetch_factor": 4}
