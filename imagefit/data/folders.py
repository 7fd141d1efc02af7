"""Folder datasets: train/valid/test splits of class folders, one folder to split, Kaggle names."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagefit.data.images import is_image_file, list_images
from imagefit.errors import DataError, OptionError

VALID_NAMES = ("valid", "val", "validation")
_KAGGLE_NAME = re.compile(r"^(?P<label>[^.]+)\.[^.]+\.[A-Za-z]+$")
_EXPECTED = "DATA/train/<class>/ and DATA/valid/<class>/, or DATA/<class>/, or names like cat.1.jpg"


@dataclass(frozen=True)
class Sample:
    """One image file and its class index (-1 when unlabelled or multi-label), or its label set."""

    path: Path
    label: int = -1
    labels: tuple[int, ...] = ()  # the class indices of a multi-label sample (may be empty)

    @property
    def label_set(self) -> tuple[int, ...]:
        """The sample's class indices whatever the task: its labels, or its one label."""
        return self.labels if self.labels or self.label < 0 else (self.label,)


@dataclass
class Dataset:
    """The images of a dataset folder, split into train, valid and optional unlabelled test."""

    root: Path
    classes: list[str]
    train: list[Sample]
    valid: list[Sample]
    test: list[Sample] = field(default_factory=list)
    layout: str = ""
    task: str = "single"  # or "multilabel": samples carry label sets

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    def counts(self, split: str) -> dict[str, int]:
        """Images per class in one split (multi-label: images carrying each label)."""
        tally = Counter(i for s in getattr(self, split) for i in s.label_set)
        return {name: tally.get(i, 0) for i, name in enumerate(self.classes)}

    def describe(self) -> str:
        """A few lines a person reads before training starts."""
        kind = "labels" if self.multilabel else "classes"
        lines = [f"{self.root}: {len(self.classes)} {kind}, {self.layout}"]
        for split in ("train", "valid", "test"):
            samples = getattr(self, split)
            if not samples:
                continue
            if split == "test":
                lines.append(f"  test : {len(samples)} unlabelled images")
                continue
            per_class = ", ".join(f"{k} {v}" for k, v in self.counts(split).items())
            bare = sum(1 for s in samples if not s.label_set)
            none = f", {bare} without labels" if bare else ""
            lines.append(f"  {split}: {len(samples)} images{none} ({per_class})")
        return "\n".join(lines)


def discover_dataset(root: str | Path, valid_pct: float = 0.2, seed: int = 0) -> Dataset:
    """Read a dataset folder in any of the supported layouts."""
    root = Path(root)
    if not 0.0 < valid_pct < 1.0:
        raise OptionError(f"--valid-pct must be between 0 and 1 (exclusive), got {valid_pct}")
    if not root.exists():
        raise DataError(f"{root} does not exist: expected a dataset folder ({_EXPECTED})")
    if not root.is_dir():
        raise DataError(f"{root} is a file: expected a dataset folder ({_EXPECTED})")
    subdirs = {p.name.lower(): p for p in _subfolders(root)}
    if "train" not in subdirs:
        groups = _read_labelled(root)
        train, valid = split_groups(groups, valid_pct, seed)
        return _assemble(root, groups, train, valid, [], f"split {valid_pct:.0%} valid, seed {seed}")
    train_groups = _read_labelled(subdirs["train"])
    valid_dir = next((subdirs[n] for n in VALID_NAMES if n in subdirs), None)
    test = [Sample(p) for p in list_images(subdirs["test"])] if "test" in subdirs else []
    if valid_dir is None:
        train, valid = split_groups(train_groups, valid_pct, seed)
        layout = f"train/ split {valid_pct:.0%} valid, seed {seed}"
    else:
        valid = _read_labelled(valid_dir, need_two=False)
        unknown = sorted(set(valid) - set(train_groups))
        if unknown:
            raise DataError(
                f"{valid_dir} has classes not in train/: {', '.join(unknown)}: "
                "every validation class needs a training folder"
            )
        train = train_groups
        layout = f"train/ + {valid_dir.name}/"
    return _assemble(root, train_groups, train, valid, test, layout)


def _assemble(
    root: Path,
    groups: dict[str, list[Path]],
    train: dict[str, list[Path]],
    valid: dict[str, list[Path]],
    test: list[Sample],
    layout: str,
) -> Dataset:
    classes = sorted(groups)
    index = {c: i for i, c in enumerate(classes)}

    def samples(g: dict[str, list[Path]]) -> list[Sample]:
        return [Sample(p, index[c]) for c in sorted(g) for p in g[c]]

    return Dataset(root, classes, samples(train), samples(valid), test, layout)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_labelled(folder: Path, need_two: bool = True) -> dict[str, list[Path]]:
    """Class name -> image paths, from class subfolders or Kaggle-style file names."""
    class_dirs = _subfolders(folder)
    if class_dirs:
        groups = {d.name: list_images(d) for d in class_dirs}
        for d in class_dirs:
            if not groups[d.name]:
                raise DataError(f"class folder {d} has no images: put .jpg/.png files in it or remove it")
    else:
        groups = _kaggle_groups(folder)
    if need_two and len(groups) < 2:
        only = next(iter(groups))
        raise DataError(
            f"{folder} holds only one class ({only}): a classifier needs at least two class folders"
        )
    return groups


def _kaggle_groups(folder: Path) -> dict[str, list[Path]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    matches = [(_KAGGLE_NAME.match(p.name), p) for p in files]
    if not files or not all(m for m, _ in matches):
        raise DataError(f"{folder} has no class subfolders: expected {_EXPECTED}")
    groups: dict[str, list[Path]] = {}
    for m, p in matches:
        groups.setdefault(m.group("label"), []).append(p)
    return groups


def split_groups(
    groups: dict[str, list[Path]], valid_pct: float, seed: int
) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Stratified random split: the same seed always picks the same validation images."""
    if not 0.0 < valid_pct < 1.0:
        raise OptionError(f"--valid-pct must be between 0 and 1 (exclusive), got {valid_pct}")
    rng = np.random.default_rng(seed)
    train, valid = {}, {}
    for name in sorted(groups):
        paths = groups[name]
        n_valid = min(len(paths) - 1, max(1, round(len(paths) * valid_pct)))
        order = rng.permutation(len(paths))
        chosen = set(order[:n_valid].tolist())
        valid[name] = [p for i, p in enumerate(paths) if i in chosen]
        train[name] = [p for i, p in enumerate(paths) if i not in chosen]
    return train, valid
