"""Training stages: which parameters train, at which learning rates, and freezing the rest.

A finetune run is a list of stages, e.g. the head alone, then the last blocks at a lower rate, then
more blocks: each `Stage` names its epochs, its learning rate and a `trainable` function that picks
parameters (or parameter groups with their own rates) from the model. Everything else is frozen:
`requires_grad` is off and the BatchNorm layers inside frozen parts stay in eval mode, so their
running statistics do not move either.

Stages are made in code (`Stage("top4", 5, 5e-4, top_groups(4))`) or read from a `--stages` spec
by `parse_stages`, which checks each stage's epochs and rate; the Trainer takes the list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from timm.models import group_parameters
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from imagefit.errors import OptionError
from imagefit.train.engine.optim import check_lr

Trainable = Callable[[nn.Module], Iterable[nn.Parameter] | Iterable[dict]]
Groups = Sequence[Sequence[str]]  # parameter names per group, in network order, the classifier last


@dataclass(frozen=True)
class Stage:
    """A run of epochs training some parameters at one learning rate (None: the optimiser's)."""

    name: str
    epochs: int
    lr: float | None = None
    trainable: Trainable | None = None  # None: every parameter


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


_STAGE = re.compile(r"^(head|top(\d+)|all):(\d+):([0-9.eE+-]+)$")


def parse_stages(spec: str, n_groups: int | None = None, groups: Groups | None = None) -> list[Stage]:
    """Stages from a `--stages` spec, `head|topN|all:EPOCHS:LR,...`, each one's epochs and rate checked.

    Each stage trains the top of `groups` (None: the model's coarse groups, found when training
    starts); knowing their number (`n_groups`, or `groups`), a stage deeper than the model fails here.
    """
    n = len(groups) if groups is not None else n_groups
    stages = []
    for token in [t.strip() for t in spec.split(",") if t.strip()]:
        m = _STAGE.match(token)
        if not m:
            raise OptionError(
                f"bad stage {token!r} in --stages: write head|topN|all:EPOCHS:LR, e.g. head:1:2e-3"
            )
        kind, top, epochs, lr = m.group(1), m.group(2), int(m.group(3)), float(m.group(4))
        if epochs < 1:
            raise OptionError(f"stage {token!r} needs at least one epoch, got {epochs}")
        check_lr(lr, f"the lr of stage {token!r}")
        depth = 0 if kind == "head" else (None if kind == "all" else int(top))
        if n is not None:
            check_depth(depth, n)
        stages.append(Stage(token, epochs, lr, top_groups(depth, groups)))
    if not stages:
        raise OptionError("--stages is empty: give at least one stage, e.g. head:1:2e-3")
    return stages


def top_groups(depth: int | None, groups: Groups | None = None) -> Trainable:
    """A `Stage.trainable`: the classifier at the stage's rate and `depth` groups below it (None: all)
    at rates falling geometrically to a tenth (discriminative rates).

    `groups` are parameter names per group, the classifier last; None: the model's `coarse_groups`.
    """

    def pick(model: nn.Module) -> list[dict]:
        names = coarse_groups(model) if groups is None else groups
        check_depth(depth, len(names))
        chosen = names if depth is None else names[len(names) - 1 - depth :]
        params = dict(model.named_parameters())
        out = []
        for i, group in enumerate(chosen):
            scale = 0.1 ** ((len(chosen) - 1 - i) / max(1, len(chosen) - 1)) if len(chosen) > 1 else 1.0
            out.append({"params": [params[name] for name in group], "lr_scale": scale})
        return out

    return pick


def check_depth(depth: int | None, n_groups: int) -> None:
    """A stage unfreezes at most the groups below the classifier."""
    if depth is not None and depth > n_groups - 1:
        raise OptionError(f"stage top{depth} unfreezes {depth} block groups but the model has {n_groups - 1}")


def coarse_groups(model) -> list[list[str]]:
    """timm's coarse parameter groups in network order, the classifier last and alone."""
    grouped = group_parameters(model, model.group_matcher(coarse=True))
    groups = [list(names) for _, names in sorted(grouped.items())]
    head = {n for n, _ in model.get_classifier().named_parameters(prefix=_classifier_name(model))}
    body = [[n for n in g if n not in head] for g in groups]
    return [g for g in body if g] + [sorted(head)]


def _classifier_name(model) -> str:
    return next(name for name, module in model.named_modules() if module is model.get_classifier())
