"""Options that several commands share, and small helpers to read and show their values."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path

import click
from click.core import ParameterSource

from imagefit.models.defaults import DEFAULT_BACKBONE, ENGINES, WEIGHT_KEYWORDS


def weights_value(value: str | None) -> str | Path | None:
    """--weights as the library takes it: a keyword, or the path of a weights file."""
    return value if value is None or value in WEIGHT_KEYWORDS else Path(value)


def default_of(options: type, name: str) -> object:
    """The default of field `name` in an options dataclass, for a --help text."""
    field = next(f for f in dataclasses.fields(options) if f.name == name)
    return field.default


def given_params(ctx: click.Context, skip: Collection[str] = ()) -> dict:
    """The parameters typed on the command line (not left at their defaults), but those in `skip`."""
    return {
        name: value
        for name, value in ctx.params.items()
        if name not in skip and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
    }


model_option = click.option(
    "--model",
    "-m",
    default=DEFAULT_BACKBONE,
    show_default=True,
    help="Backbone: efficientnet_lite0 (bundled weights) or any timm name.",
)
weights_option = click.option(
    "--weights",
    default="auto",
    show_default=True,
    help="auto (offline: bundled or cached), hub (download), none, or a file.",
)
ENGINE_HELP = (
    "Inference engine: auto measures eager, channels_last, bf16 and onnx once per model and "
    "machine and keeps the fastest that agrees with fp32 (CPU); PyTorch bf16 on GPU."
)
engine_option = click.option(
    "--engine", type=click.Choice(ENGINES), default="auto", show_default=True, help=ENGINE_HELP
)
RUN_ENGINE_HELP = (
    "Inference engine: auto (default) uses the fastest engine judged eligible on the run's validation "
    "images (predictions equal fp32's on >= 99.5 %, accuracy within 0.2 points); NAME forces one "
    f"({', '.join(ENGINES[1:])}); no-NAME forbids one."
)


def _run_engine(ctx, param, value: str) -> str:
    """NAME, auto or no-NAME, checked before any model code is imported."""
    name = value[3:] if value.startswith("no-") else value
    if name not in ENGINES or (value != name and name in ("auto", "torch")):
        raise click.BadParameter(f"{value!r}: use auto, one of {', '.join(ENGINES[1:])}, or no-NAME")
    return value


run_engine_option = click.option(
    "--engine", default="auto", show_default=True, callback=_run_engine, metavar="NAME|auto|no-NAME",
    help=RUN_ENGINE_HELP,
)  # fmt: skip
batch_option = click.option("--batch-size", "-b", type=click.IntRange(min=1), default=32, show_default=True)
workers_option = click.option(
    "--workers",
    "-j",
    type=click.IntRange(min=0),
    default=None,
    help="Image decoding processes (default: cores - 1).",
)


def inference_options(command):
    """--batch-size, --workers and --engine: how images are decoded and run through the model."""
    return batch_option(workers_option(engine_option(command)))


track_option = click.option(
    "--track",
    multiple=True,
    metavar="mlflow[:URI]|tensorboard[:DIR]|none",
    help="Log the run's parameters, metrics per epoch and files to MLflow (default store: mlruns/ beside "
    "the run folder) or TensorBoard (default: tensorboard/ beside it); repeat for both "
    "(default: $IMAGEFIT_TRACK, else none).",
)


def track_value(track: tuple[str, ...]) -> tuple[str, ...] | None:
    """--track as the library takes it: the specs given, or None for $IMAGEFIT_TRACK's."""
    return track or None


def run_inference_options(command):
    """--batch-size, --workers and a run's --engine (NAME, auto or no-NAME)."""
    return batch_option(workers_option(run_engine_option(command)))
