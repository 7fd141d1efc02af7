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

    After `probe` batches of the first epoch it plans the epochs from the seconds per batch (plus
    VALIDATION_SHARE), then after every epoch from the seconds the last epoch took in all
    (validation and the other callbacks included), so that the last epoch ends within the budget.
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
        self.first_epoch, self.steps, self.probe_start = trainer.epoch, None, None

    def on_epoch_begin(self, trainer, logs: dict) -> None:
        self.steps = logs["steps"]

    def on_batch_end(self, trainer, logs: dict) -> None:
        """The first plan: from the batches after the first (which pays one-time costs) of epoch 1."""
        if trainer.epoch != self.first_epoch or self.steps is None or self.steps <= self.probe:
            return
        if logs["batch"] == 0:
            self.probe_start = self.clock()
        elif logs["batch"] == self.probe and self.probe_start is not None:
            per_batch = (self.clock() - self.probe_start) / self.probe
            elapsed = self.clock() - self.started
            self._plan(trainer, per_batch * self.steps * (1 + VALIDATION_SHARE), elapsed, running=True)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        now = self.clock()
        self.seconds_per_epoch, self.last_end = now - self.last_end, now
        self._plan(trainer, self.seconds_per_epoch, now - self.started, running=False)

    def _plan(self, trainer, per_epoch: float, elapsed: float, running: bool) -> None:
        """Plan as many more epochs as fit in the time left (the one under way counts as begun)."""
        left = self.budget - elapsed
        if running:  # the rest of the current epoch is part of what must fit
            left -= per_epoch * (1 - (self.probe + 1) / self.steps)
        more = max(0, math.floor(left / max(per_epoch, 1e-9)))
        epochs = trainer.epoch + (1 if running else 0) + more
        if self.max_epochs is not None:
            epochs = min(epochs, self.max_epochs)
        trainer.replan(epochs)
        self.plans.append(trainer.total_epochs)
        log.info(
            "time budget %.0f min: %.0f s per epoch, %d epochs planned", self.budget / 60, per_epoch, epochs
        )
