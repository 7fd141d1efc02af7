"""What the strategies that train for epochs share: their callbacks and the fit that keeps the best."""

from __future__ import annotations

from collections.abc import Sequence

from imagefit.errors import OptionError
from imagefit.runs import RunFolder
from imagefit.train import distributed
from imagefit.train.callbacks import (
    Checkpoint,
    EarlyStopping,
    HistoryCSV,
    NaNGuard,
    ProgressBar,
    load_weights,
)
from imagefit.train.loop import Trainer
from imagefit.train.multilabel_scores import MONITOR as MULTILABEL_MONITOR


def default_callbacks(
    folder: RunFolder,
    progress: bool,
    patience: int | None = None,
    monitor: str = "val_loss",
    extra: Sequence = (),
) -> list:
    """NaN guard, history.csv, checkpoints (best by `monitor`), early stopping, progress, then `extra`."""
    callbacks = [NaNGuard(), HistoryCSV(folder.history), Checkpoint(folder.checkpoints, monitor=monitor)]
    if patience is not None:  # on val_loss, or on the monitor when it is a multi-label score
        stop_on = monitor if monitor == MULTILABEL_MONITOR else "val_loss"
        callbacks.append(EarlyStopping(stop_on, patience=patience))
    callbacks.append(ProgressBar(disable=not progress))
    return [*callbacks, *extra]


def fit_epochs(trainer: Trainer, folder: RunFolder, resume: bool) -> dict | None:
    """Train (from the last checkpoint when resuming) and load the best epoch's weights into the model.

    Returns the best checkpoint's record, or None on a worker rank of a distributed run.
    """
    if resume:
        trainer.resume(folder.checkpoints)
    trainer.fit()
    if not distributed.is_main():
        return None
    if trainer.epoch == 0:
        raise OptionError(trainer.stop_reason or "training stopped before the first epoch ended")
    return load_weights(folder.best, trainer.model)
