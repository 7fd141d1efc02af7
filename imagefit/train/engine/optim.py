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
    """Which optimiser and schedule a run uses; checked when made, before any training."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD and RMSprop
    schedule: str = "onecycle"
    warmup: float | None = None  # share of each stage's steps; None: the schedule's default

    def __post_init__(self) -> None:
        _check_name(self.name)
        check_lr(self.lr)
        _check_hyper(self.weight_decay, self.momentum)
        make_schedule(self.schedule, self.warmup)


def check_lr(lr: float, what: str = "--lr") -> None:
    """Refuse a learning rate that is not a positive finite number."""
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise OptionError(f"{what} must be a positive number, got {lr}")


def make_optimizer(
    name: str,
    param_groups: Iterable[torch.nn.Parameter] | Iterable[dict],
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """The optimiser `name` over parameters or parameter groups (a group's own 'lr' wins over `lr`)."""
    name = _check_name(name)
    check_lr(lr)
    _check_hyper(weight_decay, momentum)
    groups = list(param_groups)
    for group in groups:
        if isinstance(group, dict) and "lr" in group:
            check_lr(group["lr"], "a parameter group's lr")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    return torch.optim.RMSprop(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_schedule(name: str, warmup: float | None = None) -> Schedule:
    """A factory `(optimizer, total_steps) -> scheduler` for 'onecycle', 'cosine' or 'constant'.

    Each is a LambdaLR over the optimiser's group lrs (so discriminative lrs keep their ratios),
    stepped once per batch. Its state is plain numbers, which checkpoints store without pickle.
    """
    if name not in SCHEDULES:
        raise OptionError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
    share = DEFAULT_WARMUP[name] if warmup is None else warmup
    if not (isinstance(share, int | float) and 0 <= share < 1):
        raise OptionError(f"--warmup must be a share of the steps in [0, 1), got {warmup}")
    curve = {"onecycle": _onecycle, "cosine": _cosine, "constant": _constant}[name]

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


def _check_name(name: str) -> str:
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise OptionError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    return key


def _check_hyper(weight_decay: float, momentum: float) -> None:
    if not weight_decay >= 0:
        raise OptionError(f"--weight-decay must be 0 or more, got {weight_decay}")
    if not 0 <= momentum < 1:
        raise OptionError(f"--momentum must be in [0, 1), got {momentum}")
