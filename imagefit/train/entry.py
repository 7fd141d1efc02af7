"""The entry points: `train` a new run, `resume` an interrupted one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from imagefit.errors import ModelError
from imagefit.runs import read_config
from imagefit.train.callbacks.tracking import trackers
from imagefit.train.engine import distributed
from imagefit.train.lifecycle import Strategy, TrainResult, run_training
from imagefit.train.options import STRATEGY_OPTIONS, make_options, restore_options
from imagefit.train.strategies.registry import strategy_class


def train(
    data,
    strategy: str = "linear",
    out: str | Path | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    device: str | None = None,
    callbacks: Sequence = (),
    track: str | Sequence[str] | None = None,
    **options,
) -> TrainResult:
    """Train a classifier on `data` with `strategy` and write a run folder.

    `data` is a dataset folder, a CSV/TSV label table or a pandas DataFrame of image names and
    labels (see `imagefit.data.tables`; options images, valid, path_col, label_col, label_delim).

    `options` are the strategy's (see `imagefit.train.options`: LinearOptions, ScratchOptions,
    FinetuneOptions); one that the strategy does not take is an OptionError naming those that do.
    `track` logs the run to 'mlflow[:URI]' and/or 'tensorboard[:DIR]' (None: $IMAGEFIT_TRACK).
    """
    opts = make_options(strategy, options)
    callbacks = [*callbacks, *trackers(track)]
    if distributed.init():
        _check_world(data, opts.data_options(), seed)
        progress = progress and distributed.is_main()  # one set of bars and messages: rank 0's
        if not distributed.is_main():
            logging.getLogger("imagefit").setLevel(logging.WARNING)
    runner = strategy_class(strategy)(opts, seed, workers, progress, device, callbacks)
    return run_training(runner, data, out)


def resume(
    run_dir: str | Path,
    workers: int | None = None,
    progress: bool = True,
    device: str | None = None,
    callbacks: Sequence = (),
    track: str | Sequence[str] | None = None,
) -> TrainResult:
    """Continue a scratch or finetune run from its last checkpoint, with the options it started with
    (tracked as `train` tracks; an MLflow run of the same folder is continued)."""
    config = read_config(run_dir)
    callbacks = [*callbacks, *trackers(track)]
    kind = strategy_class(config.strategy)
    opts = restore_options(STRATEGY_OPTIONS[config.strategy], config.options)
    runner = kind(opts, config.seed, workers, progress, device, callbacks)
    if kind.rebuild is Strategy.rebuild:
        raise ModelError(
            f"{run_dir} is a {config.strategy} run, which has no epochs to resume: train it again "
            "(cached features make that fast)"
        )
    return run_training(runner, config.data, run_dir, resume=True)


def _check_world(data, data_options: dict, seed: int) -> None:
    """Every rank of a distributed run reads the same dataset, or all stop with the reason."""
    from imagefit.data.sources import read_dataset

    dataset = distributed.agree(lambda: read_dataset(data, seed=seed, **data_options), "reading the dataset")
    seen = (dataset.classes, len(dataset.train), len(dataset.valid), len(dataset.test))
    distributed.same_everywhere(seen, "datasets (classes, train, valid, test images)")
