"""The labelled images an audit looks at: every path with its class, split and where its label lives.

A dataset shape plugs in here by returning `LabelledImages`: class folders and Kaggle-style names
come from `discover_dataset`; a label table (CSV/TSV or DataFrame) sets `source=TABLE`, with `root`
the folder its image names start from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.folders import VALID_NAMES, Dataset
from imagefit.data.sources import read_dataset
from imagefit.data.tables import is_frame, is_table, read_table

FOLDER, NAME, TABLE = "folder", "name", "table"  # a label lives in a folder's name, a file's name, a table


@dataclass
class LabelledImages:
    """Parallel lists: each image's path, class index, split, and how its label is stored."""

    root: Path
    classes: list[str]
    paths: list[Path]
    labels: np.ndarray  # (n,) int64
    splits: list[str]  # "train" or "valid" when the dataset has fixed splits, else "all"
    source: str  # FOLDER, NAME or TABLE
    unlabelled: list[Path]  # test/ images: searched for duplicates, never for label issues
    label_sets: list[tuple[int, ...]] | None = None  # each image's labels in a multi-label table (labels: -1)

    def given(self, j: int) -> str:
        """Image `j`'s label, or its labels separated by spaces in a multi-label dataset."""
        return self.names(self.label_sets[j] if self.label_sets is not None else int(self.labels[j]))

    def names(self, labels: int | tuple[int, ...]) -> str:
        """The name of a class index, or the names of several separated by spaces."""
        return (
            " ".join(self.classes[k] for k in labels) if isinstance(labels, tuple) else self.classes[labels]
        )

    def relative(self, path: Path) -> str:
        """`path` relative to the dataset root, with forward slashes (as audit.csv writes it)."""
        try:
            return Path(os.path.relpath(path, self.root)).as_posix()
        except ValueError:
            return path.as_posix()


def labelled_images(data: object, valid_pct: float = 0.2, seed: int = 0, **table: object) -> LabelledImages:
    """Every labelled image of a dataset folder or label table (train and valid together), in a fixed order.

    `table` holds the table options `imagefit train` takes (images, valid, path_col, label_col,
    label_delim); a folder refuses them.
    """
    dataset = read_dataset(data, valid_pct, seed, **table)
    fixed = _fixed_splits(data, table)
    samples = [(s, "train" if fixed else "all") for s in dataset.train]
    samples += [(s, "valid" if fixed else "all") for s in dataset.valid]
    samples.sort(key=lambda item: str(item[0].path))
    return LabelledImages(
        root=table_root(data, table.get("images")) if is_table(data) else Path(data),
        classes=list(dataset.classes),
        paths=[s.path for s, _ in samples],
        labels=np.array([s.label for s, _ in samples], np.int64),
        splits=[split for _, split in samples],
        source=TABLE if is_table(data) else _label_source(dataset),
        unlabelled=[s.path for s in dataset.test],
        label_sets=[tuple(s.labels) for s, _ in samples] if dataset.multilabel else None,
    )


def table_root(data: object, images: object = None) -> Path:
    """The folder a table's image names start from: `images`, else the table's folder (a DataFrame: cwd)."""
    if images is not None:
        return Path(images)
    return Path.cwd() if is_frame(data) else Path(data).parent


def _fixed_splits(data: object, table: dict) -> bool:
    """True when the dataset says which images are for validation (valid/ folder, split column, --valid)."""
    if not is_table(data):
        return any(p.name.lower() in VALID_NAMES for p in Path(data).iterdir() if p.is_dir())
    if table.get("valid") is not None:
        return True
    return (
        read_table(data, table.get("path_col"), table.get("label_col"), table.get("label_delim")).split_col
        is not None
    )


def _label_source(dataset: Dataset) -> str:
    """FOLDER when every image sits in a folder named after its class, NAME for Kaggle-style names."""
    labelled = dataset.train + dataset.valid
    in_folders = all(s.path.parent.name == dataset.classes[s.label] for s in labelled)
    return FOLDER if in_folders else NAME
