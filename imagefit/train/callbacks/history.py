"""The history CSV callback: the run's history.csv kept equal to the trainer's history."""

from __future__ import annotations

from pathlib import Path

from imagefit.runs.history import write_history
from imagefit.train.callbacks.base import Callback


class HistoryCSV(Callback):
    """Keep `path` equal to the trainer's history after every epoch, rewritten atomically.

    On resume the trainer's history comes from the checkpoint, so the file keeps the earlier rows
    and new epochs are appended after them (an epoch that never reached a checkpoint is dropped).
    """

    main_process_only = True  # one writer in a distributed run

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_begin(self, trainer, logs: dict) -> None:
        write_history(self.path, trainer.history)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        write_history(self.path, trainer.history)
