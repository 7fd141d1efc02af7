"""Training stages: which parameters train, at which learning rates, and freezing the rest.

A finetune run is a list of stages, e.g. the head alone, then the last blocks at a lower rate, then
more blocks: each `Stage` names its epochs, its learning rate and a `trainable` function that picks
parameters (or parameter groups with their own rates) from the model. Everything else is frozen:
`requires_grad` is off and the BatchNorm layers inside frozen parts stay in eval mode, so their
running statistics do not move either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from imagefit.errors import OptionError
from imagefit.train.optim import check_lr

Trainable = Callable[[nn.Module], Iterable[nn.Parameter] | Iterable[dict]]


@dataclass(frozen=True)
class Stage:
    """A run of epochs training some parameters at one learning rate (None: the optimiser's)."""

    name: str
    epochs: int
    lr: float | None = None
    trainable: Trainable | None = None  # None: every parameter

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise OptionError(f"stage {self.name!r} needs at least one epoch, got {self.epochs}")
        if self.lr is not None:
            check_lr(self.lr, f"the lr of stage {self.name!r}")


def prefix_groups(*groups: tuple[str | Sequence[str], float]) -> Trainable:
    """A `Stage.trainable`: parameters whose names start with the prefixes, each group at its lr share.

    `prefix_groups((["blocks.5", "blocks.6"], 0.1), ("classifier", 1.0))` trains the last two blocks
    at a tenth of the stage's learning rate and the classifier at the full rate.
    """

    def pick(model: nn.Module) -> list[dict]:
        out = []
        for prefixes, scale in groups:
            prefixes = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
            params = [p for n, p in model.named_parameters() if _under(n, prefixes)]
            if not params:
                raise OptionError(f"no parameters under {', '.join(prefixes)} in {type(model).__name__}")
            out.append({"params": params, "lr_scale": float(scale)})
        return out

    return pick


def param_groups(model: nn.Module, stage: Stage, lr: float) -> list[dict]:
    """The stage's parameter groups with absolute learning rates ('lr', else lr x 'lr_scale')."""
    picked = list(stage.trainable(model) if stage.trainable is not None else model.parameters())
    if picked and isinstance(picked[0], dict):
        groups = [{**g, "params": list(g["params"])} for g in picked]
    else:
        groups = [{"params": picked}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise OptionError(f"stage {stage.name!r} trains no parameters: check its trainable layers")
    for group in groups:
        group.setdefault("lr", lr * group.get("lr_scale", 1.0))
        check_lr(group["lr"], f"a parameter group's lr in stage {stage.name!r}")
    return groups


def freeze_except(model: nn.Module, groups: list[dict]) -> None:
    """Turn gradients on for the groups' parameters and off for every other one."""
    keep = {id(p) for g in groups for p in g["params"]}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)


def frozen_norms_to_eval(model: nn.Module) -> None:
    """Put BatchNorm layers whose parameters are all frozen into eval mode (call after model.train())."""
    for module in model.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, _BatchNorm) and params and not any(p.requires_grad for p in params):
            module.eval()


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)
