"""The history CSV: the seeds' columns, one row per epoch, continued on resume."""

from __future__ import annotations

import csv

import pytest

from imagefit.runs.history import COLUMNS, read_history
from imagefit.train.callbacks import Checkpoint, HistoryCSV
from tests._training import InterruptAt, tiny_trainer


def test_one_row_per_epoch_with_the_named_columns(tmp_path):
    path = tmp_path / "history.csv"
    trainer = tiny_trainer([HistoryCSV(path)], epochs=3)
    history = trainer.fit()
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert (
        rows[0] == ["epoch", "stage", "lr", "loss", "acc", "val_loss", "val_acc", "seconds"] == list(COLUMNS)
    )
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"] and {r[1] for r in rows[1:]} == {"train"}
    for written, row in zip(read_history(path), history, strict=True):
        for column in ("lr", "loss", "acc", "val_loss", "val_acc"):
            assert written[column] == pytest.approx(row[column], rel=1e-5, abs=1e-6)


def test_a_missing_validation_leaves_empty_cells(tmp_path):
    path = tmp_path / "history.csv"
    trainer = tiny_trainer([HistoryCSV(path)], epochs=1)
    trainer.valid_data = None
    trainer.fit()
    row = read_history(path)[0]
    assert row["val_loss"] is None and row["val_acc"] is None and row["loss"] > 0


def test_resume_keeps_earlier_rows_and_appends(tmp_path):
    path = tmp_path / "history.csv"
    first = tiny_trainer([Checkpoint(tmp_path), HistoryCSV(path), InterruptAt(3, 2)], epochs=4)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert [r["epoch"] for r in read_history(path)] == [1, 2]
    before = path.read_text().splitlines()
    resumed = tiny_trainer([Checkpoint(tmp_path), HistoryCSV(path)], epochs=4).resume(tmp_path)
    resumed.fit()
    after = path.read_text().splitlines()
    assert after[:3] == before and [r["epoch"] for r in read_history(path)] == [1, 2, 3, 4]
