"""A time budget: the number of epochs, and the learning-rate schedule with it, fitted to a limit."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from imagefit.errors import OptionError
from imagefit.train.callbacks.base import Callback

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.1  # an epoch's validation and callbacks, guessed before the first epoch has ended


def cpu_clock() -> float:
    """CPU seconds of this process over its torch threads: the wall time its work takes on an
    otherwise idle machine (a budget measured so is fair between runs on a shared machine)."""
    import torch

    return time.process_time() / max(1, torch.get_num_threads())


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.monotonic, "cpu": cpu_clock}


class TimeBudget(Callback):
    """Fits training into `minutes` of wall time, on whatever machine it runs.

    Every `probe` batches it plans the epochs from the epoch's seconds per batch (plus the last
    epoch's validation and callbacks, or VALIDATION_SHARE before one has ended), and after every
    epoch from the seconds that epoch took in all, so that the last epoch ends within the budget.
    The Trainer stretches or shrinks the learning-rate schedule to each plan (`Trainer.replan`): a
    faster machine trains more epochs in the same time, a slower one fewer, each with a whole
    schedule. `clock` reads the time: wall time (monotonic) by default, or CLOCKS['cpu'].
    `max_epochs` caps the plan. `plans` keeps every plan made, `seconds_per_epoch` the last measure.
    """

    order = -10  # before the checkpoints, so that the state they save holds the new plan

    def __init__(
        self,
        minutes: float,
        probe: int = 5,
        max_epochs: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not (isinstance(minutes, int | float) and math.isfinite(minutes) and minutes > 0):
            raise OptionError(f"--budget must be a positive number of minutes, got {minutes}")
        self.budget, self.probe, self.max_epochs, self.clock = minutes * 60.0, probe, max_epochs, clock
        self.plans: list[int] = []
        self.seconds_per_epoch: float | None = None

    def on_train_begin(self, trainer, logs: dict) -> None:
        self.started = self.last_end = self.clock()
        self.steps = self.pace_start = self.batches_end = None
        self.overhead: float | None = None  # seconds of an epoch after its last batch (validation...)

    def on_epoch_begin(self, trainer, logs: dict) -> None:
        self.steps = logs["steps"]

    def on_batch_end(self, trainer, logs: dict) -> None:
        """Plans within an epoch, every `probe` batches, from the epoch's pace so far (its first batch,
        which may pay one-time costs, left out): a step that grows dearer during training (unlabelled
        images after their warm-up) is seen before the epoch ends, and the schedule follows."""
        batch, now = logs["batch"], self.clock()
        if batch == 0:
            self.pace_start = now
        if batch == self.steps - 1:
            self.batches_end = now
        if self.steps is None or self.steps <= self.probe or batch == 0 or batch % self.probe:
            return
        if batch >= self.steps - 1:
            return
        per_batch = (now - self.pace_start) / batch
        overhead = self.overhead if self.overhead is not None else VALIDATION_SHARE * per_batch * self.steps
        rest = per_batch * (self.steps - batch - 1) + overhead
        self._plan(trainer, per_batch * self.steps + overhead, now - self.started, rest)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        now = self.clock()
        self.seconds_per_epoch, self.last_end = now - self.last_end, now
        if self.pace_start is not None and self.batches_end is not None and self.steps and self.steps > 1:
            per_batch = (self.batches_end - self.pace_start) / (self.steps - 1)
            self.overhead = max(0.0, self.seconds_per_epoch - per_batch * self.steps)
        self._plan(trainer, self.seconds_per_epoch, now - self.started, None)

    def _plan(self, trainer, per_epoch: float, elapsed: float, rest: float | None) -> None:
        """Plan as many more epochs as fit in the time left after the `rest` of the epoch under way
        (None: at an epoch's end)."""
        left = self.budget - elapsed - (rest or 0.0)
        more = max(0, math.floor(left / max(per_epoch, 1e-9)))
        epochs = trainer.epoch + (0 if rest is None else 1) + more
        if self.max_epochs is not None:
            epochs = min(epochs, self.max_epochs)
        before = trainer.total_epochs
        trainer.replan(epochs)
        self.plans.append(trainer.total_epochs)
        if trainer.total_epochs != before or rest is None:
            log.info(
                "time budget %.0f min: %.0f s per epoch, %d epochs planned",
                self.budget / 60,
                per_epoch,
                epochs,
            )
