"""A run's history.csv: one row per epoch (epoch, stage, lr, loss, acc, val_loss, val_acc, seconds).

Multi-label runs add val_mAP and val_samples_f1 (their acc is the share of label decisions right);
any other value in the rows (val_miou, a semi-supervised run's unlabelled_loss...) comes before seconds.
"""

from __future__ import annotations

import csv
from pathlib import Path

from imagefit.data.atomic import write_with

COLUMNS = ("epoch", "stage", "lr", "loss", "acc", "val_loss", "val_acc", "seconds")
MULTILABEL_COLUMNS = ("val_mAP", "val_samples_f1")


def write_history(path: str | Path, rows: list[dict]) -> None:
    """Write the rows as the history CSV, atomically."""

    columns = COLUMNS
    if any(k in row for row in rows for k in MULTILABEL_COLUMNS):
        columns = (*COLUMNS[:-1], *MULTILABEL_COLUMNS, COLUMNS[-1])
    extra = [k for k in dict.fromkeys(k for row in rows for k in row) if k not in columns]
    columns = (*columns[:-1], *extra, columns[-1])

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows([_cell(row.get(c), c) for c in columns] for row in rows)

    write_with(path, write)


def read_history(path: str | Path) -> list[dict]:
    """The rows of a history CSV with numbers as numbers and empty cells as None."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _parse(k, v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _cell(value, column: str) -> str:
    if value is None:
        return ""
    if column in ("epoch", "stage"):
        return str(value)
    return f"{value:.6g}" if column in ("lr", "seconds") else f"{value:.6f}"


def _parse(column: str, text: str):
    if column == "stage":
        return text
    if text == "":
        return None
    return int(text) if column == "epoch" else float(text)
