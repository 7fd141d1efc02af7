"""Kaggle-style submission files: `id,label`, the label being the clipped probability of one class.

Ids come from file names: the number of `1234.jpg`, else the file's stem. Rows are sorted by
numeric id (then by the other ids). Clipping to [0.025, 0.975] bounds the log loss of a confident
mistake at -log(0.025) = 3.7 instead of letting one image cost up to 35.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_with
from imagefit.errors import DataError, OptionError
from imagefit.inference.predictions import Predictions

log = logging.getLogger(__name__)

DEFAULT_CLIP = (0.025, 0.975)


def submission_id(path: str | os.PathLike) -> int | str:
    """The id of an image in a submission: the number of `1234.jpg` (1234), else the stem."""
    stem = Path(path).stem
    return int(stem) if stem.isascii() and stem.isdigit() else stem


def _order(item: int | str) -> tuple[int, int | str]:
    return (0, item) if isinstance(item, int) else (1, item)


@dataclass
class Submission:
    """Which class's probability a submission holds and how it is clipped; checked when made."""

    classes: list[str]
    positive: str | None = None  # None: the second class in sorted order (two classes only)
    clip: tuple[float, float] = DEFAULT_CLIP

    def __post_init__(self) -> None:
        if self.positive is None:
            if len(self.classes) != 2:
                raise OptionError(
                    f"the model has {len(self.classes)} classes: say which one the submission scores "
                    f"with --positive ({', '.join(self.classes)})"
                )
            self.positive = sorted(self.classes)[1]
        if self.positive not in self.classes:
            raise OptionError(
                f"--positive {self.positive} is not a class of the model ({', '.join(self.classes)})"
            )
        lo, hi = (float(v) for v in self.clip)
        if not 0 <= lo < hi <= 1:
            raise OptionError(f"--clip needs 0 <= LO < HI <= 1, got {lo} {hi}")
        self.clip = (lo, hi)

    def rows(self, preds: Predictions) -> list[tuple[int | str, float]]:
        """(id, clipped probability of the positive class), sorted by id; duplicate ids are an error."""
        if not preds.paths:
            raise DataError("none of the images could be read: there is nothing to submit")
        column = preds.classes.index(self.positive)
        probs = np.clip(np.asarray(preds.probabilities, np.float64)[:, column], *self.clip)
        by_id: dict[int | str, list[Path]] = defaultdict(list)
        for path in preds.paths:
            by_id[submission_id(path)].append(Path(path))
        clashes = {k: v for k, v in by_id.items() if len(v) > 1}
        if clashes:
            key, paths = next(iter(clashes.items()))
            raise DataError(
                f"{len(clashes)} id(s) name more than one image, e.g. {key}: {paths[0]} and {paths[1]} "
                "(a submission needs one image per id)"
            )
        rows = [(submission_id(p), float(v)) for p, v in zip(preds.paths, probs, strict=True)]
        return sorted(rows, key=lambda row: _order(row[0]))

    def write(self, preds: Predictions, target: str | os.PathLike) -> Path:
        """Write the `id,label` CSV atomically; images that could not be read are missing and named."""
        rows = [(key, f"{value:.6g}") for key, value in self.rows(preds)]
        return write_submission_csv(preds, target, ("id", "label"), rows)


def write_submission_csv(preds: Predictions, target: str | os.PathLike, header, rows) -> Path:
    """Write a submission CSV atomically; images that could not be read are missing and named."""
    if preds.errors:
        log.warning(
            "the submission lacks %d image(s) that could not be read, e.g. %s",
            len(preds.errors),
            preds.errors[0][0],
        )

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(header)
            out.writerows(rows)

    write_with(target, write)
    return Path(target)


def write_submission(
    preds: Predictions,
    target: str | os.PathLike,
    positive: str | None = None,
    clip: tuple[float, float] = DEFAULT_CLIP,
) -> Path:
    """Write a Kaggle submission of `preds`: id, clipped probability of the `positive` class."""
    return Submission(preds.classes, positive, clip).write(preds, target)
