"""The labelled images an audit looks at: every path with its class, split and where its label lives.

A dataset shape plugs in here by returning `LabelledImages`: class folders and Kaggle-style names
come from `discover_dataset`; a table of `path,label` rows (issue 14) will set `source="table"`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.folders import VALID_NAMES, Dataset, discover_dataset

FOLDER, NAME = "folder", "name"  # a label lives in the class folder's name, or in the file's name


@dataclass
class LabelledImages:
    """Parallel lists: each image's path, class index, split, and how its label is stored."""

    root: Path
    classes: list[str]
    paths: list[Path]
    labels: np.ndarray  # (n,) int64
    splits: list[str]  # "train" or "valid" when the dataset has fixed splits, else "all"
    source: str  # FOLDER or NAME (later: "table")
    unlabelled: list[Path]  # test/ images: searched for duplicates, never for label issues

    def relative(self, path: Path) -> str:
        """`path` relative to the dataset root, with forward slashes (as audit.csv writes it)."""
        try:
            return Path(os.path.relpath(path, self.root)).as_posix()
        except ValueError:
            return path.as_posix()


def labelled_images(data: str | os.PathLike, valid_pct: float = 0.2, seed: int = 0) -> LabelledImages:
    """Every labelled image of a dataset folder (train and valid together), in a fixed order."""
    dataset = discover_dataset(data, valid_pct, seed)
    fixed = any(p.name.lower() in VALID_NAMES for p in Path(data).iterdir() if p.is_dir())
    samples = [(s, "train" if fixed else "all") for s in dataset.train]
    samples += [(s, "valid" if fixed else "all") for s in dataset.valid]
    samples.sort(key=lambda item: str(item[0].path))
    return LabelledImages(
        root=Path(data),
        classes=list(dataset.classes),
        paths=[s.path for s, _ in samples],
        labels=np.array([s.label for s, _ in samples], np.int64),
        splits=[split for _, split in samples],
        source=_label_source(dataset),
        unlabelled=[s.path for s in dataset.test],
    )


def _label_source(dataset: Dataset) -> str:
    """FOLDER when every image sits in a folder named after its class, NAME for Kaggle-style names."""
    labelled = dataset.train + dataset.valid
    in_folders = all(s.path.parent.name == dataset.classes[s.label] for s in labelled)
    return FOLDER if in_folders else NAME
