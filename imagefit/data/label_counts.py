"""How the labels of a multi-label dataset are spread: labels per image, images per label, bare images."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from imagefit.data.folders import Dataset


def label_spread(dataset: Dataset, split: str = "train", skipped: Collection[Path] = ()) -> str:
    """One line: labels per image (mean, range), images per label (range, naming the ends), bare images."""
    samples = [s for s in getattr(dataset, split) if s.path not in skipped]
    if not samples:
        return f"  {split}: no readable images"
    per_image = np.array([len(s.label_set) for s in samples])
    per_label = np.zeros(len(dataset.classes), np.int64)
    for sample in samples:
        per_label[list(sample.label_set)] += 1
    few, many = int(per_label.argmin()), int(per_label.argmax())
    bare = int((per_image == 0).sum())
    return (
        f"  labels per image in {split}: {per_image.mean():.2f} on average ({per_image.min()} to "
        f"{per_image.max()}); images per label: {per_label[few]} ({dataset.classes[few]}) to "
        f"{per_label[many]} ({dataset.classes[many]}); {bare} image(s) with no label"
    )


def label_imbalance_warning(big: str, n_big: int, small: str, n_small: int, split: str = "train") -> str:
    """The warning of a multi-label dataset whose most frequent label far outnumbers its rarest."""
    return (
        f"label imbalance in {split}: {big} is on {n_big} images, {small} on {n_small} "
        f"({n_big / max(n_small, 1):.1f} : 1); micro-F1 follows the frequent labels and will flatter "
        "the model, macro-F1 and the per-label table show the rare ones; --class-weights auto weighs "
        "their positives up"
    )
