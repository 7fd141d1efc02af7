"""Checkpoints: the last epoch's full training state, and the best model by a monitored value."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from torch import nn

from imagefit.runs.folder import BEST, LAST
from imagefit.train.callbacks.base import Callback
from imagefit.train.engine.state import load_state, save_state

log = logging.getLogger(__name__)


class Checkpoint(Callback):
    """After every epoch, write `last.safetensors` (all state) and, on improvement, `best.safetensors`.

    Each file is written to a temporary name and renamed, so a crash or Ctrl-C leaves the previous
    good file. Tensors are stored as safetensors and everything else as JSON in its header: no
    pickle. Best is decided on `monitor` ('val_loss' by default, 'loss' when there is no validation).
    """

    order = 100  # after the others, so that their decisions (stops) are part of the state
    main_process_only = True  # one writer in a distributed run

    def __init__(self, directory: str | Path, monitor: str = "val_loss", mode: str = "auto"):
        self.directory = Path(directory)
        self.monitor = monitor
        self.mode = mode if mode != "auto" else higher_is_better(monitor)

    @property
    def best_path(self) -> Path:
        return self.directory / BEST

    @property
    def last_path(self) -> Path:
        return self.directory / LAST

    def on_train_begin(self, trainer, logs: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        key = self.monitor if logs.get(self.monitor) is not None else "loss"
        value = logs.get(key)
        earlier = [row[key] for row in trainer.history[:-1] if _finite(row.get(key))]
        if _finite(value) and (not earlier or self._better(value, earlier)):
            # best before last: if the process dies in between, a resume redoes this epoch and both
            meta = {"epoch": logs["epoch"], "stage": logs["stage"], "monitor": key, "value": value}
            save_state(self.best_path, {"model": trainer.model.state_dict(), "meta": meta})
        save_state(self.last_path, trainer.state_dict())

    def on_train_end(self, trainer, logs: dict) -> None:
        if logs.get("stopped") and self.last_path.is_file():
            log.info("kept the checkpoint of epoch %d: %s", trainer.epoch, self.last_path)

    def _better(self, value: float, earlier: list[float]) -> bool:
        return value < min(earlier) if self.mode == "min" else value > max(earlier)


def higher_is_better(monitor: str) -> str:
    """'max' for accuracies, mAP and F1 scores, 'min' for losses."""
    return "max" if any(key in monitor for key in ("acc", "mAP", "f1")) else "min"


def load_weights(path: str | Path, model: nn.Module) -> dict:
    """Load the model weights of a checkpoint (best or last) into `model`; returns its metadata."""
    state = load_state(path)
    model.load_state_dict(state["model"])
    if "meta" in state:
        return state["meta"]
    return {"epoch": state["position"]["epoch"], "stage": state["history"][-1]["stage"]}


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
