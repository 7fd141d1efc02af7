"""Multi-label submission files in the `image_name,tags` shape of Kaggle's Planet competition.

`image_name` is the file's stem, `tags` the labels predicted for it joined by a space (empty when
none reaches its threshold). Rows are sorted as a person lists the files: stems that are numbers
by value first, then the others by their numbered parts (`test_2` before `test_10`).
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from pathlib import Path

from imagefit.errors import DataError, OptionError
from imagefit.inference.predictions import Predictions
from imagefit.inference.submission import write_submission_csv

log = logging.getLogger(__name__)

HEADER = ("image_name", "tags")


def _natural(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def tag_rows(preds: Predictions) -> list[tuple[str, str]]:
    """(image name, space-joined predicted labels), sorted; two images with one name are an error."""
    if not preds.multilabel:
        raise OptionError("an image_name,tags submission needs a multi-label model")
    if not preds.paths:
        raise DataError("none of the images could be read: there is nothing to submit")
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in preds.paths:
        by_name[Path(path).stem].append(Path(path))
    clashes = [paths for paths in by_name.values() if len(paths) > 1]
    if clashes:
        raise DataError(
            f"{len(clashes)} name(s) belong to more than one image, e.g. {clashes[0][0]} and "
            f"{clashes[0][1]} (a submission needs one image per name)"
        )
    rows = [(Path(p).stem, " ".join(labels)) for p, labels in zip(preds.paths, preds.labels, strict=True)]
    return sorted(rows, key=lambda row: _natural(row[0]))


def write_tag_submission(preds: Predictions, target: str | os.PathLike) -> Path:
    """Write the `image_name,tags` CSV atomically; images that could not be read are missing and named."""
    return write_submission_csv(preds, target, HEADER, tag_rows(preds))
