"""Helpers for the training-loop tests: tiny tensors, a tiny CNN, callbacks that record or interrupt."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from imagefit.models.small_cnn import SmallCNN
from imagefit.train.callbacks import Callback
from imagefit.train.engine.optim import OptimSpec
from imagefit.train.engine.stages import Stage
from imagefit.train.engine.trainer import Trainer, seed_everything

TINY_SPEC = "conv4@3-bn-pool2-drop0.3-dense8-drop0.2"


def tiny_loaders(n_train: int = 48, n_valid: int = 16, batch_size: int = 8) -> tuple[DataLoader, DataLoader]:
    """Two classes of 1x12x12 noise, brighter or darker on average; the same tensors every time."""
    g = torch.Generator().manual_seed(123)
    y = torch.arange(n_train + n_valid) % 2
    x = torch.randn(n_train + n_valid, 1, 12, 12, generator=g) + (y.float() - 0.5).view(-1, 1, 1, 1)
    train = DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=batch_size, shuffle=True)
    valid = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=batch_size)
    return train, valid


def tiny_trainer(
    callbacks=(), stages=None, epochs: int = 3, optim: OptimSpec | None = None, seed: int = 1, **kwargs
) -> Trainer:
    """A Trainer on a freshly initialised tiny CNN (seeded), with dropout and BatchNorm in it."""
    seed_everything(seed)
    model = SmallCNN(TINY_SPEC, in_chans=1, num_classes=2, input_size=12)
    train, valid = tiny_loaders()
    optim = optim or OptimSpec("adam", 0.01)
    options = {"stages": stages, "epochs": epochs, "callbacks": callbacks, "seed": seed, **kwargs}
    return Trainer(model, train, valid, optim=optim, **options)


def two_stages(lr: float = 0.01) -> list[Stage]:
    from imagefit.train.engine.stages import prefix_groups

    return [
        Stage("head", 2, lr, prefix_groups(("head", 1.0))),
        Stage("all", 2, lr, prefix_groups((["features", "pre_logits"], 0.1), ("head", 1.0))),
    ]


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


class Recorder(Callback):
    """Remembers every hook call with a copy of its logs."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def on_train_begin(self, trainer, logs):
        self.calls.append(("on_train_begin", dict(logs)))

    def on_train_end(self, trainer, logs):
        self.calls.append(("on_train_end", dict(logs)))

    def on_epoch_begin(self, trainer, logs):
        self.calls.append(("on_epoch_begin", dict(logs)))

    def on_epoch_end(self, trainer, logs):
        self.calls.append(("on_epoch_end", dict(logs)))

    def on_batch_begin(self, trainer, logs):
        self.calls.append(("on_batch_begin", dict(logs)))

    def on_batch_end(self, trainer, logs):
        self.calls.append(("on_batch_end", dict(logs)))


class InterruptAt(Callback):
    """Raises KeyboardInterrupt after batch `batch` of epoch `epoch` (both counted from 1 and 0)."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, trainer, logs):
        self.current = logs["epoch"]

    def on_batch_end(self, trainer, logs):
        if (self.current, logs["batch"]) == (self.epoch, self.batch):
            raise KeyboardInterrupt


class StubTrainer:
    """Just what the epoch-end callbacks read: a model, a history, stop flags and a state."""

    def __init__(self, model: torch.nn.Module | None = None):
        self.model = model or torch.nn.Linear(2, 2)
        self.history: list[dict] = []
        self.epoch = 0
        self.stop_training = self.stop_stage = False
        self.stop_reason = None
        self.stages = [Stage("train", 10)]

    def end_epoch(self, callback, **row) -> dict:
        """Append a history row (as the Trainer does) and call the callback's on_epoch_end."""
        self.epoch += 1
        logs = {"epoch": self.epoch, "stage": "train", "lr": 0.1, "loss": 1.0, "acc": 0.5, **row}
        self.history.append(logs)
        callback.on_epoch_end(self, dict(logs))
        return logs

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "position": {"epoch": self.epoch}, "history": self.history}
