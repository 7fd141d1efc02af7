"""The history CSV: one row per epoch (epoch, stage, lr, loss, acc, val_loss, val_acc, seconds)."""

from __future__ import annotations

import csv
from pathlib import Path

from imagefit._atomic import write_with
from imagefit.train.callbacks.base import Callback

COLUMNS = ("epoch", "stage", "lr", "loss", "acc", "val_loss", "val_acc", "seconds")


class HistoryCSV(Callback):
    """Keep `path` equal to the trainer's history after every epoch, rewritten atomically.

    On resume the trainer's history comes from the checkpoint, so the file keeps the earlier rows
    and new epochs are appended after them (an epoch that never reached a checkpoint is dropped).
    """

    main_process_only = True  # one writer in a distributed run

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_begin(self, trainer, logs: dict) -> None:
        self._write(trainer.history)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        self._write(trainer.history)

    def _write(self, rows: list[dict]) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(COLUMNS)
                writer.writerows([_cell(row.get(c), c) for c in COLUMNS] for row in rows)

        write_with(self.path, write)


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
