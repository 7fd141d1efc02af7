"""A table of image names and labels made into the Dataset that class folders give."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.folders import Dataset, Sample, split_groups
from imagefit.data.image_names import AmbiguousName, ImageFinder
from imagefit.data.tables import Row, Table, read_table
from imagefit.errors import DataError, OptionError

log = logging.getLogger(__name__)

TASKS = ("auto", "single", "multilabel")
SHOWN = 20  # missing images named one by one before the rest are counted


@dataclass(frozen=True)
class Item:
    """A row whose image was found, with the table it came from (for messages)."""

    row: Row
    path: Path
    table: Table


def table_dataset(
    data: object,
    images: str | Path | None = None,
    valid: str | Path | None = None,
    valid_pct: float = 0.2,
    seed: int = 0,
    path_col: str | None = None,
    label_col: str | None = None,
    label_delim: str | None = None,
    task: str = "auto",
) -> Dataset:
    """The dataset of a label table (file or DataFrame), split by its split column, `valid` or `valid_pct`.

    Image names are relative to `images` (default: the table's folder). Rows whose image does not
    exist are named, skipped and counted; a multi-label task is chosen when any image has more
    than one label, or when `task` is "multilabel".
    """
    if task not in TASKS:
        raise OptionError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if not 0.0 < valid_pct < 1.0:
        raise OptionError(f"--valid-pct must be between 0 and 1 (exclusive), got {valid_pct}")
    table = read_table(data, path_col, label_col, label_delim)
    root = Path(images) if images is not None else table.folder
    items = _found(table, ImageFinder(root))
    if table.split_col:
        parts = {s: [i for i in items if i.row.split == s] for s in ("train", "valid", "test")}
        how = f"split by column {table.split_col!r}"
    elif valid is not None:
        other = read_table(valid, path_col, label_col, label_delim)
        found = _found(other, ImageFinder(Path(images) if images is not None else other.folder))
        parts, how = {"train": items, "valid": found, "test": []}, f"valid rows from {valid}"
    else:
        parts, how = None, f"split {valid_pct:.0%} valid, seed {seed}"
    labelled = items if parts is None else parts["train"] + parts["valid"]
    multilabel = task == "multilabel" or (task == "auto" and any(len(i.row.labels) > 1 for i in labelled))
    if not multilabel:
        _need_one_label(labelled)
    classes = _classes(table, items if parts is None else parts["train"])
    if parts is None:
        parts = _split(items, valid_pct, seed, multilabel)
    _known_in_valid(parts["valid"], classes)
    layout = f"table {Path(table.source).name} ({table.shape}{', multi-label' if multilabel else ''}), {how}"
    where = Path(table.source) if table.source != "DataFrame" else root
    return _assemble(where, classes, parts, layout, multilabel)


def _found(table: Table, finder: ImageFinder) -> list[Item]:
    """The rows whose image exists (the others named and counted), each image once."""
    log.info(table.describe())
    items, missing, seen = [], [], {}
    for row in table.rows:
        try:
            path = finder.find(row.name)
        except AmbiguousName as exc:
            a, b = exc.args
            raise DataError(
                f"{table.at(row, table.path_col)}: {row.name!r} matches both {a} and {b}: "
                "write the name with its folder and extension"
            ) from None
        if path is None:
            missing.append(row)
            continue
        key = path.resolve()
        if key in seen:
            _same_labels(table, seen[key], row, path)
            continue
        seen[key] = row
        items.append(Item(row, path, table))
    _report_missing(table, finder.root, missing)
    return items


def _same_labels(table: Table, first: Row, again: Row, path: Path) -> None:
    if first.labels != again.labels:
        raise DataError(
            f"{table.source}: {path} is listed twice with different labels, {first.where} "
            f"({' '.join(first.labels) or 'none'}) and {again.where} ({' '.join(again.labels) or 'none'}): "
            "keep one row"
        )
    log.info("%s %s repeats %s (same labels): counted once", table.source, again.where, first.where)


def _report_missing(table: Table, root: Path, missing: list[Row]) -> None:
    for row in missing[:SHOWN]:
        log.warning("%s: no image %r under %s: skipped", table.at(row, table.path_col), row.name, root)
    if len(missing) == len(table.rows):
        raise DataError(
            f"{table.source}: none of the {len(missing)} images named in column {table.path_col!r} "
            f"exists under {root}: give the images folder with --images"
        )
    if missing:
        log.warning("%s: skipped %d of %d rows: their image does not exist", table.source, len(missing),
                    len(table.rows))  # fmt: skip


def _need_one_label(items: list[Item]) -> None:
    for item in items:
        t, labels = item.table, item.row.labels
        where = t.at(item.row, t.label_cols[0]) if t.shape != "one-hot" else f"{t.source} {item.row.where}"
        if not labels:
            raise DataError(
                f"{where}: no label: in a single-label table every image needs one (images without "
                "labels are allowed in a multi-label table: --task multilabel)"
            )
        if len(labels) > 1:
            raise DataError(f"{where}: {len(labels)} labels ({' '.join(labels)}) in a --task single table")


def _classes(table: Table, train: list[Item]) -> list[str]:
    classes = sorted({label for item in train for label in item.row.labels})
    if len(classes) < 2:
        columns = ", ".join(repr(c) for c in table.label_cols[:3])
        raise DataError(
            f"{table.source} column(s) {columns}: the training rows hold {len(classes)} label(s) "
            f"({', '.join(classes) or 'none'}): a classifier needs at least two"
        )
    return classes


def _known_in_valid(valid: list[Item], classes: list[str]) -> None:
    known = set(classes)
    for item in valid:
        unknown = [label for label in item.row.labels if label not in known]
        if unknown:
            t = item.table
            column = t.label_cols[0] if t.shape != "one-hot" else unknown[0]
            raise DataError(
                f"{t.at(item.row, column)}: label {unknown[0]!r} appears only in validation rows: "
                "add training images of it, or drop it"
            )


def _split(items: list[Item], valid_pct: float, seed: int, multilabel: bool) -> dict[str, list[Item]]:
    """Held-out rows: stratified per class as folders are, or (multi-label) a seeded random share."""
    if multilabel:
        order = sorted(items, key=lambda i: str(i.path))
        n_valid = min(len(order) - 1, max(1, round(len(order) * valid_pct)))
        chosen = set(np.random.default_rng(seed).permutation(len(order))[:n_valid].tolist())
        return {
            "train": [it for k, it in enumerate(order) if k not in chosen],
            "valid": [it for k, it in enumerate(order) if k in chosen],
            "test": [],
        }
    by_path = {it.path: it for it in items}
    groups: dict[str, list[Path]] = {}
    for it in items:
        groups.setdefault(it.row.labels[0], []).append(it.path)
    train, valid = split_groups({c: sorted(ps) for c, ps in groups.items()}, valid_pct, seed)
    pick = lambda g: [by_path[p] for c in sorted(g) for p in g[c]]  # noqa: E731
    return {"train": pick(train), "valid": pick(valid), "test": []}


def _assemble(root: Path, classes: list[str], parts: dict, layout: str, multilabel: bool) -> Dataset:
    index = {c: i for i, c in enumerate(classes)}

    def samples(items: list[Item]) -> list[Sample]:
        if multilabel:
            ordered = sorted(items, key=lambda i: str(i.path))
            return [Sample(i.path, -1, tuple(index[x] for x in i.row.labels)) for i in ordered]
        ordered = sorted(items, key=lambda i: (index[i.row.labels[0]], str(i.path)))
        return [Sample(i.path, index[i.row.labels[0]]) for i in ordered]

    test = [Sample(i.path) for i in sorted(parts["test"], key=lambda i: str(i.path))]
    task = "multilabel" if multilabel else "single"
    return Dataset(root, classes, samples(parts["train"]), samples(parts["valid"]), test, layout, task)
