"""imagefit train: a dataset folder in, a run folder out.

Only the options given on the command line reach the library; the strategy's options dataclass
(imagefit.train.options) fills in the rest and rejects an option the strategy does not take.
The defaults shown in --help are read from those dataclasses, never written here.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from imagefit.cli.options import ENGINE_HELP, default_of, track_option, track_value, workers_option
from imagefit.models.defaults import ENGINES
from imagefit.train.options import (
    CLASS_WEIGHTS,
    HEAD_INITS,
    STRATEGY_OPTIONS,
    option_names,
)

RUN_ARGS = ("data", "strategy", "out", "seed", "workers", "resume_run", "track")  # not strategy options


def _takers(name: str) -> dict[str, type]:
    return {s: kind for s, kind in STRATEGY_OPTIONS.items() if name in option_names(kind)}


def _for(name: str, text: str, show=str) -> str:
    """Help for option `name`: the strategies that take it (when not all do), `text`, the default(s).

    `show` formats a default; None: the text says it already.
    """
    takers = _takers(name)
    defaults = {s: default_of(kind, name) for s, kind in takers.items()}
    prefix = "" if len(takers) == len(STRATEGY_OPTIONS) else f"{', '.join(takers)}: "
    if show is None:
        return prefix + text
    if len(set(map(repr, defaults.values()))) == 1:
        return f"{prefix}{text} (default: {show(next(iter(defaults.values())))})"
    return f"{prefix}{text} (default: {', '.join(f'{show(v)} ({s})' for s, v in defaults.items())})"


def _on_off(value: object) -> str:
    return "on" if value else "off"


@click.command()
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option(
    "--strategy",
    type=click.Choice(list(STRATEGY_OPTIONS)),
    default="linear",
    show_default=True,
    help="linear: a logistic-regression head on cached backbone features; finetune: a new head, "
    "then later blocks unfrozen in --stages; scratch: a small CNN trained from scratch (--arch).",
)
@click.option(
    "--model", "-m", help=_for("model", "the backbone, efficientnet_lite0 (bundled weights) or any timm name")
)
@click.option(
    "--weights", help=_for("weights", "auto (offline: bundled or cached), hub (download), none, or a file")
)
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Run folder (default: new under runs/).")
@click.option(
    "--valid-pct",
    type=float,
    help=_for("valid_pct", "Share held out for validation when DATA has no valid/ folder"),
)
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    help="Folder the image names of a label table start from (default: the table's folder).",
)
@click.option(
    "--valid",
    type=click.Path(path_type=Path),
    help="A second table of validation rows, when DATA's table has no is_valid or split column.",
)
@click.option("--path-col", help="The table's column of image names (default: guessed).")
@click.option(
    "--label-col", help="The table's column of labels (default: guessed; several 0/1 columns: one-hot)."
)
@click.option(
    "--label-delim",
    help="Separator of several labels in one cell: a character, space, or none for one label per cell "
    "(default: guessed from | ; , and space).",
)
@click.option(
    "--task",
    type=click.Choice(["auto", "single", "multilabel"]),
    help="auto: multi-label when any image has several labels (default: auto).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--image-size",
    type=click.IntRange(min=8),
    help=_for("image_size", "Square input size (default: the backbone's; scratch: from the images).", None),
)
@click.option(
    "--batch-size",
    "-b",
    type=click.IntRange(min=1),
    help=_for("batch_size", "Images per batch (default 32, or the training set's size when smaller).", None),
)
@workers_option
@click.option("--engine", type=click.Choice(ENGINES), help=_for("engine", ENGINE_HELP))
@click.option("--no-cache", is_flag=True, help=_for("cache", "recompute features even if cached.", None))
@click.option(
    "--arch",
    help=_for(
        "arch",
        "larger_model, simple_model, baseline_model or a spec such as "
        "conv30@5-pool2-conv15@3-pool2-drop0.2-dense128-dense50",
    ),
)
@click.option(
    "--stages", help=_for("stages", "head|topN|all:EPOCHS:LR stages, each at its own learning rate")
)
@click.option(
    "--head-init",
    type=click.Choice(HEAD_INITS),
    help=_for("head_init", "start the new head as the linear strategy's fit on cached features, or random"),
)
@click.option(
    "--wise",
    type=float,
    help=_for(
        "wise",
        "the saved weights are this share fine-tuned, the rest the linear probe's they started from "
        "(WiSE-FT; 1: fine-tuned only)",
    ),
)
@click.option("--epochs", type=click.IntRange(min=1), help=_for("epochs", "epochs"))
@click.option("--lr", type=float, help=_for("lr", "peak learning rate"))
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "adam", "adamw", "rmsprop"], case_sensitive=False),
    help=_for("optimizer", "optimiser"),
)
@click.option(
    "--schedule",
    type=click.Choice(["onecycle", "cosine", "constant"]),
    help=_for("schedule", "learning-rate schedule"),
)
@click.option(
    "--warmup", type=float, help=_for("warmup", "share of steps to warm up (default per schedule).", None)
)
@click.option("--weight-decay", type=float, help=_for("weight_decay", "weight decay"))
@click.option("--momentum", type=float, help=_for("momentum", "momentum of sgd and rmsprop"))
@click.option(
    "--channels",
    type=click.Choice(["1", "3"]),
    help=_for("channels", "1 (grayscale) or 3 input channels (default: from the images).", None),
)
@click.option(
    "--augment/--no-augment",
    default=None,
    help=_for("augment", "random crops (75-100 %), flips, colour jitter", _on_off),
)
@click.option(
    "--aug",
    "aug_spec",
    help=_for(
        "augment",
        "augmentation settings, e.g. rotate=15,shear=10,vflip=0.5,blur=0.2,scale=0.6-1,jitter=0.3 "
        "(names: scale hflip vflip rotate shear jitter blur; implies --augment).",
        None,
    ),
)
@click.option(
    "--class-weights",
    type=click.Choice(CLASS_WEIGHTS),
    help=_for(
        "class_weights", "auto: weigh classes by n / (k * n_c) in training, for imbalanced folders.", None
    ),
)
@click.option(
    "--mixup",
    type=float,
    help=_for("mixup", "train on blends of image pairs, weights from Beta(ALPHA, ALPHA), e.g. 0.2"),
)
@click.option(
    "--label-smoothing",
    type=float,
    help=_for("label_smoothing", "spread this share of each target over the classes, e.g. 0.1"),
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    help=_for("patience", "stop after N epochs without a lower val_loss (default: no early stopping).", None),
)
@click.option(
    "--exclude",
    type=click.Path(path_type=Path),
    help=_for("exclude", "leave out the images this file lists (paths, or a CSV such as audit.csv).", None),
)
@click.option(
    "--calibrate/--no-calibrate",
    default=None,
    help=_for(
        "calibrate", "fit a temperature (multi-label: per-label scaling) on the validation images", _on_off
    ),
)
@click.option(
    "--unknown-recall",
    type=float,
    help=_for("unknown_recall", "share of validation images the familiarity threshold keeps known"),
)
@click.option(
    "--resume",
    "resume_run",
    type=click.Path(path_type=Path),
    help="Continue the scratch or finetune run in this folder from its last checkpoint.",
)
@track_option
@click.pass_context
def train(ctx: click.Context, data, strategy, out, seed, workers, resume_run, track, **_options) -> None:
    """Train a classifier on DATA (class folders or a CSV/TSV label table) and write a run folder."""
    given = given_options(ctx)
    if resume_run is not None:
        from imagefit.train import resume

        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise click.UsageError(f"--resume continues RUN with the options it started with: drop {flags}")
        result = resume(resume_run, workers=workers, track=track_value(track))
    elif data is None:
        raise click.UsageError("give DATA, or --resume RUN to continue a run")
    else:
        from imagefit.train import train as run

        result = run(
            data, strategy=strategy, out=out, seed=seed, workers=workers, track=track_value(track), **given
        )
    if result.classifier is None:
        return  # a worker rank of a distributed run: rank 0 reports
    print_metrics(result.metrics)
    click.echo(f"run folder: {result.run_dir}  (report: {result.run_dir / 'report.html'})")


def given_options(ctx: click.Context) -> dict:
    """The strategy options typed on the command line, named and typed as the options dataclasses."""
    given = {
        name: value
        for name, value in ctx.params.items()
        if name not in RUN_ARGS and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
    }
    if given.pop("no_cache", False):
        given["cache"] = False
    spec = given.pop("aug_spec", None)
    if spec is not None and given.get("augment") is not False:
        given["augment"] = spec
    if "channels" in given:
        given["channels"] = int(given["channels"])
    if "optimizer" in given:
        given["optimizer"] = given["optimizer"].lower()
    return given


def print_metrics(metrics: dict) -> None:
    """Accuracy and loss per split, and how many images were skipped."""
    for split in ("train", "valid"):
        m = metrics.get(split, {})
        if m.get("n") and "samples_f1" in m:
            click.echo(
                f"{split}: samples-F1 {m['samples_f1']:.4f}  micro-F1 {m['micro_f1']:.4f}  macro-F1 "
                f"{m['macro_f1']:.4f}  mAP {m['mAP']:.4f}  loss {m['loss']:.4f}  ({m['n']} images)"
            )
        elif m.get("n"):
            click.echo(f"{split}: accuracy {m['accuracy']:.4f}  loss {m['loss']:.4f}  ({m['n']} images)")
    trust = metrics.get("trust", {})
    if "ece" in trust:
        t = trust["calibration"]["temperature"]
        click.echo(
            f"calibrated: temperature {t:.3f}, ECE {trust['ece_uncalibrated']:.4f} -> {trust['ece']:.4f}"
        )
    if "valid_unknown_share" in trust:
        click.echo(
            f"unknown: {trust['valid_unknown_share']:.1%} of the validation images below the threshold"
        )
    if metrics.get("skipped"):
        click.echo(f"skipped {len(metrics['skipped'])} unreadable image(s), listed in metrics.json")
