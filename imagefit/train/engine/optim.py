"""Optimisers (SGD with momentum, Adam, AdamW, RMSprop) and learning-rate schedules stepped per batch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR

from imagefit.errors import OptionError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("onecycle", "cosine", "constant")
DEFAULT_WARMUP = {"onecycle": 0.25, "cosine": 0.05, "constant": 0.0}

# one-cycle starts at lr / 25 and ends at lr / 25e4, as fastai and PyTorch's OneCycleLR do
_ONECYCLE_START, _ONECYCLE_END = 1 / 25, 1 / 25e4

Schedule = Callable[[torch.optim.Optimizer, int], LambdaLR]


@dataclass(frozen=True)
class OptimSpec:
    """Which optimiser and schedule a run uses; its settings are checked here, once, when it is made."""

    name: str = "adam"
    lr: float | None = 1e-3  # the rate of stages without their own; None: every stage brings one
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD and RMSprop
    schedule: str = "onecycle"
    warmup: float | None = None  # share of each stage's steps; None: the schedule's default

    def __post_init__(self) -> None:
        key = str(self.name).lower()
        if key not in OPTIMIZERS:
            raise OptionError(f"unknown optimizer {self.name!r}: choose one of {', '.join(OPTIMIZERS)}")
        object.__setattr__(self, "name", key)
        if self.lr is not None:
            check_lr(self.lr)
        if not self.weight_decay >= 0:
            raise OptionError(f"--weight-decay must be 0 or more, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise OptionError(f"--momentum must be in [0, 1), got {self.momentum}")
        if self.schedule not in SCHEDULES:
            raise OptionError(f"unknown schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}")
        share = self.warmup
        if share is not None and not (isinstance(share, int | float) and 0 <= share < 1):
            raise OptionError(f"--warmup must be a share of the steps in [0, 1), got {share}")


def check_lr(lr: float, what: str = "--lr") -> None:
    """Refuse a learning rate that is not a positive finite number."""
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise OptionError(f"{what} must be a positive number, got {lr}")


def make_optimizer(
    spec: OptimSpec, param_groups: Iterable[torch.nn.Parameter] | Iterable[dict], lr: float
) -> torch.optim.Optimizer:
    """The optimiser of `spec` over parameters or parameter groups (a group's own 'lr' wins over `lr`)."""
    groups, decay, momentum = list(param_groups), spec.weight_decay, spec.momentum
    if spec.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=decay)
    if spec.name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=decay)
    if spec.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=decay)
    return torch.optim.RMSprop(groups, lr=lr, momentum=momentum, weight_decay=decay)


def make_schedule(spec: OptimSpec) -> Schedule:
    """A factory `(optimizer, total_steps) -> scheduler` for the spec's 'onecycle', 'cosine' or 'constant'.

    Each is a LambdaLR over the optimiser's group lrs (so discriminative lrs keep their ratios),
    stepped once per batch. Its state is plain numbers, which checkpoints store without pickle.
    """
    share = DEFAULT_WARMUP[spec.schedule] if spec.warmup is None else spec.warmup
    curve = {"onecycle": _onecycle, "cosine": _cosine, "constant": _constant}[spec.schedule]

    def build(optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
        total = max(1, int(total_steps))
        warm = min(total - 1, round(share * total)) if share > 0 else 0
        return LambdaLR(optimizer, lambda step: curve(min(step, total), warm, total))

    return build


def _onecycle(step: int, warm: int, total: int) -> float:
    if step < warm:
        return _cos_between(_ONECYCLE_START, 1.0, step / warm)
    return _cos_between(1.0, _ONECYCLE_END, (step - warm) / max(1, total - warm))


def _cosine(step: int, warm: int, total: int) -> float:
    if step < warm:
        return (step + 1) / (warm + 1)
    return _cos_between(1.0, 0.0, (step - warm) / max(1, total - warm))


def _constant(step: int, warm: int, total: int) -> float:
    return (step + 1) / (warm + 1) if step < warm else 1.0


def _cos_between(start: float, end: float, t: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0))) / 2
