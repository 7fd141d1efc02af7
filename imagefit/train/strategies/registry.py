"""The strategy classes by the name that `imagefit train --strategy` and config.json use."""

from __future__ import annotations

from imagefit.errors import OptionError
from imagefit.train.lifecycle import Strategy
from imagefit.train.strategies.finetune import FinetuneStrategy
from imagefit.train.strategies.linear import LinearStrategy
from imagefit.train.strategies.scratch import ScratchStrategy

STRATEGY_CLASSES: dict[str, type[Strategy]] = {
    "linear": LinearStrategy,
    "scratch": ScratchStrategy,
    "finetune": FinetuneStrategy,
}


def strategy_class(name: str) -> type[Strategy]:
    """The Strategy subclass of a strategy name."""
    if name in STRATEGY_CLASSES:
        return STRATEGY_CLASSES[name]
    raise OptionError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGY_CLASSES)}")
