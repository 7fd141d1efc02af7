"""A tiny multi-label table for the tests: images coloured by the mean of their labels' colours."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.conftest import COLOURS, write_image

LABELS = ("blue", "green", "red")
SETS = [("blue",), ("blue", "red"), ("green",), ("green", "red"), ("red",), ("blue", "green"), ("blue",)]
VALID = {"im02", "im04", "im08", "im13"}


def write_table(root: Path, test: int = 0) -> Path:
    """Images coloured by the mean of their labels' colours, and a `image_name,tags,split` table;
    `test` more images in the test split, unlabelled."""
    rows = [["image_name", "tags", "split"]]
    for i in range(test):
        write_image(root / f"test{i}.png", COLOURS["red"], 100 + i, size=(24, 20))
        rows.append([f"test{i}.png", "", "test"])
    for i, labels in enumerate(SETS * 2):
        colour = tuple(int(np.mean([COLOURS[x][k] for x in labels])) for k in range(3))
        write_image(root / f"im{i:02d}.png", colour, i, size=(24, 20))
        rows.append([f"im{i:02d}.png", " ".join(labels), "valid" if f"im{i:02d}" in VALID else "train"])
    with open(root / "tags.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return root / "tags.csv"
