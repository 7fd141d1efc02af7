"""The callback protocol: hooks at the start and end of training, epochs and batches."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagefit.train.engine.trainer import Trainer


class Callback:
    """No-op hooks to override; `logs` is the only channel, `trainer.stop_training` the stop flag.

    Logs: train begin {epochs, epoch (already done), stages}; epoch begin {epoch, epochs, stage,
    steps}; batch begin {batch, size}; batch end {batch, size, batch_loss, loss, acc, lr} (loss and
    acc are running means over the epoch, as Keras shows them); epoch end: the history row
    {epoch, stage, lr, loss, acc, val_loss, val_acc, seconds}, with val_mAP and val_samples_f1 when
    the trainer is multi-label; train end {epoch, stopped}.

    A stop requested during an epoch discards that partial epoch: no epoch end, no history row, no
    checkpoint. `trainer.stop_stage` ends the current stage only. Callbacks run in ascending
    `order` (checkpoints last, so that they record what the others decided).

    Two hooks frame the whole run, for every strategy (a linear run has no epochs, so only these
    two reach it); the training lifecycle calls them with `trainer` None. Run begin {run_dir,
    strategy, config (config.json's content), data (a summary: classes, images or tiles), resumed},
    once the run folder and its config exist; run end {run_dir, metrics, status}, after the run is
    saved and reported (status FINISHED), or when it failed (FAILED; KILLED on Ctrl-C; metrics empty).
    """

    order = 0
    main_process_only = False  # True: called on rank 0 only in a distributed run (files, bars)

    def on_train_begin(self, trainer: Trainer, logs: dict) -> None:
        """Before the first epoch of `fit` (also after a resume)."""

    def on_train_end(self, trainer: Trainer, logs: dict) -> None:
        """After the last epoch, or when training stopped; `logs['stopped']` says why, if it did."""

    def on_run_begin(self, trainer: None, logs: dict) -> None:
        """Once the run folder and its config.json exist, before any data is fitted."""

    def on_run_end(self, trainer: None, logs: dict) -> None:
        """After the run folder is complete (metrics, report), or when the run failed."""

    def on_epoch_begin(self, trainer: Trainer, logs: dict) -> None:
        """Before the first batch of an epoch."""

    def on_epoch_end(self, trainer: Trainer, logs: dict) -> None:
        """After validation; `logs` is the epoch's history row."""

    def on_batch_begin(self, trainer: Trainer, logs: dict) -> None:
        """Before a training batch."""

    def on_batch_end(self, trainer: Trainer, logs: dict) -> None:
        """After a training batch's optimiser step."""
