"""Leaving images out of a dataset without touching its files: `imagefit train --exclude FILE`.

FILE is a list of paths, one a line, or a CSV with a `path` column (audit.csv, a FIXES file); in
a CSV with an `action` column, rows whose action is `keep` stay in. Relative paths are read from
the dataset's root.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import replace
from pathlib import Path

from imagefit.data.folders import Dataset
from imagefit.errors import DataError

log = logging.getLogger(__name__)


def read_exclude_list(file: str | os.PathLike, root: str | os.PathLike) -> set[Path]:
    """Absolute paths of the images `file` names, relative ones taken from `root`."""
    file = Path(file)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{file}: cannot read the exclude list ({exc.strerror or exc})") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and "path" in next(csv.reader([lines[0]])):
        rows = csv.DictReader(lines)
        names = [r["path"] for r in rows if (r.get("action") or "").strip().lower() != "keep"]
    else:
        names = [line.strip() for line in lines if not line.lstrip().startswith("#")]
    return {Path(os.path.abspath(Path(root) / name.strip())) for name in names if name and name.strip()}


def drop_excluded(dataset: Dataset, file: str | os.PathLike | None) -> Dataset:
    """`dataset` without the images `file` lists (the dataset itself when `file` is None)."""
    if file is None:
        return dataset
    gone = read_exclude_list(file, dataset.root)

    def keep(samples):
        return [s for s in samples if Path(os.path.abspath(s.path)) not in gone]

    smaller = replace(dataset, train=keep(dataset.train), valid=keep(dataset.valid), test=keep(dataset.test))
    dropped = sum(len(getattr(dataset, s)) - len(getattr(smaller, s)) for s in ("train", "valid", "test"))
    log.info("left out %d image(s) listed in %s", dropped, file)
    if dropped < len(gone):
        log.warning("%d path(s) in %s are not images of %s", len(gone) - dropped, file, dataset.root)
    return smaller
