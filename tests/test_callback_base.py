"""The callback protocol: which hooks run, in which order, with which logs."""

from __future__ import annotations

import pytest

from imagefit.train.callbacks import Callback, Checkpoint
from tests._training import Recorder, tiny_trainer


def test_every_hook_runs_in_order_with_its_logs():
    recorder = Recorder()
    tiny_trainer([recorder], epochs=2).fit()
    names = [name for name, _ in recorder.calls]
    per_epoch = ["on_epoch_begin", *["on_batch_begin", "on_batch_end"] * 6, "on_epoch_end"]
    assert names == ["on_train_begin", *per_epoch, *per_epoch, "on_train_end"]
    logs = dict(recorder.calls)
    assert logs["on_train_begin"] == {"epochs": 2, "epoch": 0, "stages": ["train"]}
    assert recorder.calls[1][1] == {"epoch": 1, "epochs": 2, "stage": "train", "steps": 6}
    batch = recorder.calls[3][1]
    assert set(batch) == {"batch", "size", "batch_loss", "loss", "acc", "lr"} and batch["size"] == 8
    assert batch["loss"] == pytest.approx(batch["batch_loss"])  # the first batch's running mean is itself
    epoch_end = recorder.calls[14][1]
    assert set(epoch_end) == {"epoch", "stage", "lr", "loss", "acc", "val_loss", "val_acc", "seconds"}
    assert logs["on_train_end"] == {"epoch": 2, "stopped": None}


def test_the_running_loss_is_the_mean_of_the_batch_losses():
    recorder = Recorder()
    tiny_trainer([recorder], epochs=1).fit()
    batches = [logs for name, logs in recorder.calls if name == "on_batch_end"]
    mean = sum(b["batch_loss"] * b["size"] for b in batches) / sum(b["size"] for b in batches)
    assert batches[-1]["loss"] == pytest.approx(mean)
    epoch_end = next(logs for name, logs in recorder.calls if name == "on_epoch_end")
    assert epoch_end["loss"] == pytest.approx(mean)


def test_callbacks_run_by_order_and_checkpoints_last(tmp_path):
    seen = []

    class Named(Callback):
        def __init__(self, name, order=0):
            self.name, self.order = name, order

        def on_epoch_end(self, trainer, logs):
            seen.append(self.name)

    class SpyCheckpoint(Checkpoint):
        def on_epoch_end(self, trainer, logs):
            seen.append("checkpoint")

    trainer = tiny_trainer([SpyCheckpoint(tmp_path), Named("late", 5), Named("a"), Named("b")], epochs=1)
    trainer.fit()
    assert seen == ["a", "b", "late", "checkpoint"]


def test_a_stop_requested_in_a_batch_discards_the_partial_epoch():
    class StopInSecondEpoch(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.epoch == 1 and logs["batch"] == 2:
                trainer.stop_training = True

    recorder = Recorder()
    trainer = tiny_trainer([StopInSecondEpoch(), recorder], epochs=3)
    history = trainer.fit()
    assert len(history) == 1 and trainer.epoch == 1
    assert [name for name, _ in recorder.calls].count("on_epoch_end") == 1
    assert recorder.calls[-1] == ("on_train_end", {"epoch": 1, "stopped": None})


def test_plain_objects_with_some_hooks_work_as_callbacks():
    class OnlyEpochs:
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, trainer, logs):
            self.epochs.append(logs["epoch"])

    plain = OnlyEpochs()
    tiny_trainer([plain], epochs=2).fit()
    assert plain.epochs == [1, 2]
