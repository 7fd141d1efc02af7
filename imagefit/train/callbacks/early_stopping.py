"""Early stopping: end training (or the current stage) when a monitored value stops improving."""

from __future__ import annotations

import logging
import math

from imagefit.errors import OptionError
from imagefit.train.callbacks.base import Callback
from imagefit.train.callbacks.checkpoint import higher_is_better

log = logging.getLogger(__name__)


class EarlyStopping(Callback):
    """Stop after `patience` epochs without an improvement larger than `min_delta` in `monitor`.

    The decision is recomputed from `trainer.history` at every epoch end, so it needs no state of
    its own and a resumed run decides exactly as an uninterrupted one. With scope 'stage' only the
    current stage's epochs count and the stop ends that stage; with 'run' it ends training.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        scope: str = "run",
    ):
        if patience < 1:
            raise OptionError(f"--patience must be at least 1, got {patience}")
        if min_delta < 0:
            raise OptionError(f"min_delta must be 0 or more, got {min_delta}")
        if scope not in ("run", "stage"):
            raise OptionError(f"early stopping scope must be 'run' or 'stage', got {scope!r}")
        self.monitor, self.patience, self.min_delta, self.scope = monitor, patience, min_delta, scope
        self.mode = mode if mode != "auto" else higher_is_better(monitor)

    def epochs_without_improvement(self, rows: list[dict]) -> int:
        """Epochs since the best value, counted as Keras does (an improvement must beat min_delta)."""
        best, wait = math.inf, 0
        sign = 1.0 if self.mode == "min" else -1.0
        for row in rows:
            value = row.get(self.monitor)
            if value is not None and sign * value < best - self.min_delta:
                best, wait = sign * value, 0
            else:
                wait += 1
        return wait

    def on_epoch_end(self, trainer, logs: dict) -> None:
        rows = trainer.history
        if self.scope == "stage":
            rows = [row for row in rows if row["stage"] == logs["stage"]]
        wait = self.epochs_without_improvement(rows)
        if wait < self.patience:
            return
        message = f"early stopping: {self.monitor} has not improved for {wait} epochs"
        if self.scope == "stage":
            trainer.stop_stage = True
            log.info("%s: stage %s ends", message, logs["stage"])
        else:
            trainer.stop_training = True
            trainer.stop_reason = "early stopping"
            log.info(message)
