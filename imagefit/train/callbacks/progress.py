"""Progress bars: one per epoch, showing loss and acc as it goes and val_loss, val_acc at its end."""

from __future__ import annotations

import sys
from typing import IO

from tqdm.auto import tqdm

from imagefit.train.callbacks.base import Callback


class ProgressBar(Callback):
    """A tqdm bar per epoch, like Keras' `verbose=1`: `epoch 3/10 [head] ... loss=…, acc=…, val_loss=…`."""

    main_process_only = True  # one bar in a distributed run

    def __init__(self, file: IO[str] | None = None, leave: bool = True, disable: bool = False):
        self.file, self.leave, self.disable = file, leave, disable
        self.bar = None

    def on_epoch_begin(self, trainer, logs: dict) -> None:
        desc = f"epoch {logs['epoch']}/{logs['epochs']}"
        if len(trainer.stages) > 1:
            desc += f" [{logs['stage']}]"
        self.bar = tqdm(
            total=logs.get("steps"),
            desc=desc,
            unit="batch",
            file=self.file or sys.stderr,
            leave=self.leave,
            disable=self.disable,
            dynamic_ncols=True,
        )

    def on_batch_end(self, trainer, logs: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", acc=f"{logs['acc']:.4f}", refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        if self.bar is None:
            return
        keys = ("loss", "acc", "val_loss", "val_acc", "val_mAP")
        shown = {k: f"{logs[k]:.4f}" for k in keys if logs.get(k) is not None}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.close()
        self.bar = None

    def on_train_end(self, trainer, logs: dict) -> None:
        if self.bar is not None:  # an epoch cut short
            self.bar.close()
            self.bar = None
