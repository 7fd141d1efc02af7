"""The imagefit command line: each command parses, calls one library function, prints."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click
from tqdm.auto import tqdm

from imagefit.errors import ImagefitError
from imagefit.features.engines import ENGINES
from imagefit.models.registry import DEFAULT_BACKBONE

log = logging.getLogger("imagefit")


class UserError(click.ClickException):
    """A mistake the user can fix: one line, exit code 2."""

    exit_code = 2


class InternalError(click.ClickException):
    """Something imagefit did not expect: a short message, exit code 1."""

    exit_code = 1


class ShortUsageError(click.UsageError):
    """A wrong command line in two lines: what is wrong, and where the help is."""

    def show(self, file=None) -> None:
        hint = f"Try '{self.ctx.command_path} -h' for help." if self.ctx else "Try 'imagefit -h' for help."
        click.echo(f"Error: {self.format_message()}\n{hint}", err=True)


def _short(exc: click.UsageError) -> ShortUsageError:
    return ShortUsageError(exc.format_message(), exc.ctx)


class _Group(click.Group):
    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _short(exc) from exc

    def invoke(self, ctx: click.Context):
        debug = "--debug" in sys.argv or ctx.params.get("debug", False)
        try:
            return super().invoke(ctx)
        except ImagefitError as exc:
            if debug:
                raise
            raise UserError(str(exc)) from exc
        except click.UsageError as exc:
            raise exc if isinstance(exc, ShortUsageError) else _short(exc) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as exc:  # a path the user gave cannot be read or written: theirs to fix
            if debug or exc.filename is None:
                raise
            reason = (exc.strerror or str(exc)).lower()
            raise UserError(f"{exc.filename}: {reason}: check the path and its permissions") from exc
        except KeyboardInterrupt:
            click.echo(
                "interrupted: the last complete epoch's checkpoint is kept "
                "(continue the run with imagefit train --resume RUN)",
                err=True,
            )
            sys.exit(130)
        except Exception as exc:
            if debug:
                raise
            raise InternalError(
                f"internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for the traceback)"
            ) from exc


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        tqdm.write(prefix + record.getMessage(), file=sys.stderr)


def _setup_logging(quiet: bool) -> None:
    log.handlers[:] = [_TqdmHandler()]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def _weights(value: str) -> str | Path:
    return value if value in ("auto", "hub", "none") else Path(value)


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
engine_option = click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="auto",
    show_default=True,
    help="Inference engine: auto measures eager, channels_last, bf16 and onnx once per model and "
    "machine and keeps the fastest that agrees with fp32 (CPU); PyTorch bf16 on GPU.",
)
batch_option = click.option("--batch-size", "-b", type=click.IntRange(min=1), default=32, show_default=True)
workers_option = click.option(
    "--workers",
    "-j",
    type=click.IntRange(min=0),
    default=None,
    help="Image decoding processes (default: cores - 1).",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and results.")
@click.option(
    "--background",
    type=click.Choice(["white", "black"]),
    default=None,
    help="Colour that transparent pixels are laid on (default white, or $IMAGEFIT_BACKGROUND).",
)
@click.version_option(package_name="imagefit")
def cli(debug: bool, quiet: bool, background: str | None) -> None:
    """Transfer learning on image folders: train, predict, explain."""
    _setup_logging(quiet)
    if background:
        os.environ["IMAGEFIT_BACKGROUND"] = background  # decode workers inherit it


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_option
@weights_option
@click.option("--top", "-k", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per image.")
def imagenet(images, model, weights, top, as_json) -> None:
    """Top-k ImageNet classes of IMAGES (files or folders)."""
    from imagefit.inference.imagenet import imagenet as run

    results = run(images, model=model, weights=_weights(weights), top=top, progress=False)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for item in results:
        click.echo(item["path"])
        for p in item["predictions"]:
            click.echo(f"  {p['probability']:6.1%}  {p['wnid']}  {p['name']}")


@cli.command()
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option(
    "--strategy",
    type=click.Choice(["linear", "finetune", "scratch"]),
    default="linear",
    show_default=True,
    help="linear: a logistic-regression head on cached backbone features; finetune: a new head, "
    "then later blocks unfrozen in --stages; scratch: a small CNN trained from scratch (--arch).",
)
@model_option
@weights_option
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Run folder (default: new under runs/).")
@click.option(
    "--valid-pct",
    type=float,
    default=0.2,
    show_default=True,
    help="Share held out for validation when DATA has no valid/ folder.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--image-size",
    type=click.IntRange(min=8),
    default=None,
    help="Square input size (default: the backbone's; scratch: from the images).",
)
@click.option(
    "--batch-size",
    "-b",
    type=click.IntRange(min=1),
    default=None,
    help="Images per batch (default 32, or the training set's size when smaller).",
)
@workers_option
@engine_option
@click.option("--no-cache", is_flag=True, help="Recompute features even if cached.")
@click.option(
    "--arch",
    default="larger_model",
    show_default=True,
    help="scratch: larger_model, simple_model, baseline_model or a spec such as "
    "conv30@5-pool2-conv15@3-pool2-drop0.2-dense128-dense50.",
)
@click.option(
    "--stages",
    default=None,
    help="finetune: head|topN|all:EPOCHS:LR stages (default head:1:2e-3,top2:2:1e-4,top4:2:5e-5).",
)
@click.option(
    "--head-init",
    type=click.Choice(["linear", "random"]),
    default=None,
    help="finetune: start the new head as the linear strategy's fit on cached features (default: linear).",
)
@click.option(
    "--wise",
    type=float,
    default=None,
    help="finetune: the saved weights are this share fine-tuned, the rest the linear probe's it started "
    "from (WiSE-FT; default 0.5; 1: fine-tuned only).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True, help="scratch: epochs.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="scratch: peak learning rate.")
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "adam", "adamw", "rmsprop"], case_sensitive=False),
    default=None,
    help="Default: adam (scratch), adamw (finetune).",
)
@click.option(
    "--schedule", type=click.Choice(["onecycle", "cosine", "constant"]), default="onecycle", show_default=True
)
@click.option("--warmup", type=float, default=None, help="Share of steps to warm up (default per schedule).")
@click.option("--weight-decay", type=float, default=None, help="Default: 0 (scratch), 0.01 (finetune).")
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option(
    "--channels",
    type=click.Choice(["1", "3"]),
    default=None,
    help="scratch: 1 (grayscale) or 3 input channels (default: from the images).",
)
@click.option(
    "--augment/--no-augment",
    default=None,
    help="Random crops (75-100 %), flips, colour jitter. Default: off (scratch), on (finetune).",
)
@click.option(
    "--aug",
    "aug_spec",
    default=None,
    help="Augmentation settings, e.g. rotate=15,shear=10,vflip=0.5,blur=0.2,scale=0.6-1,jitter=0.3 "
    "(names: scale hflip vflip rotate shear jitter blur; implies --augment).",
)
@click.option(
    "--class-weights",
    type=click.Choice(["none", "auto"]),
    default="none",
    show_default=True,
    help="auto: weigh classes by n / (k * n_c) in training, for imbalanced folders.",
)
@click.option(
    "--mixup",
    type=float,
    default=None,
    help="scratch/finetune: train on blends of image pairs, weights from Beta(ALPHA, ALPHA), e.g. 0.2.",
)
@click.option(
    "--label-smoothing",
    type=float,
    default=None,
    help="scratch/finetune: spread this share of each target over the classes, e.g. 0.1.",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after N epochs without a lower val_loss.",
)
@click.option(
    "--resume",
    "resume_run",
    type=click.Path(path_type=Path),
    default=None,
    help="Continue the scratch or finetune run in this folder from its last checkpoint.",
)
def train(
    data,
    strategy,
    model,
    weights,
    out,
    valid_pct,
    seed,
    image_size,
    batch_size,
    workers,
    engine,
    no_cache,
    stages,
    head_init,
    wise,
    arch,
    epochs,
    lr,
    optimizer,
    schedule,
    warmup,
    weight_decay,
    momentum,
    channels,
    augment,
    aug_spec,
    class_weights,
    mixup,
    label_smoothing,
    patience,
    resume_run,
) -> None:
    """Train a classifier on DATA (class folders) and write a run folder."""
    from imagefit.train import train as run

    if resume_run is not None:
        from imagefit.train import resume

        result = resume(resume_run, workers=workers)
    elif data is None:
        raise click.UsageError("give DATA, or --resume RUN to continue a run")
    else:
        common = {
            "optimizer": optimizer and optimizer.lower(),
            "schedule": schedule,
            "warmup": warmup,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "augment": aug_spec if aug_spec is not None and augment is not False else augment,
            "patience": patience,
            "mixup": mixup,
            "label_smoothing": label_smoothing,
        }
        common = {k: v for k, v in common.items() if v is not None}  # the strategy's defaults fill the rest
        scratch = {
            **common,
            "arch": arch,
            "epochs": epochs,
            "lr": lr,
            "channels": int(channels) if channels else None,
        }
        given = {"stages": stages, "head_init": head_init, "wise": wise}
        finetune = {**common, **{k: v for k, v in given.items() if v is not None}}
        result = run(
            data,
            strategy=strategy,
            model=model,
            weights=_weights(weights),
            out=out,
            valid_pct=valid_pct,
            seed=seed,
            batch_size=batch_size,
            workers=workers,
            engine=engine,
            cache=not no_cache,
            image_size=image_size,
            scratch=scratch,
            finetune=finetune,
            class_weights=class_weights,
        )
    if result.classifier is None:
        return  # a worker rank of a distributed run: rank 0 reports
    _print_metrics(result.metrics)
    click.echo(f"run folder: {result.run_dir}  (report: {result.run_dir / 'report.html'})")


def _print_metrics(metrics: dict) -> None:
    for split in ("train", "valid"):
        m = metrics.get(split, {})
        if m.get("n"):
            click.echo(f"{split}: accuracy {m['accuracy']:.4f}  loss {m['loss']:.4f}  ({m['n']} images)")
    if metrics.get("skipped"):
        click.echo(f"skipped {len(metrics['skipped'])} unreadable image(s), listed in metrics.json")


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write all probabilities as CSV.")
@click.option(
    "--submission",
    type=click.Path(path_type=Path),
    help="Write a Kaggle file: id (from the file name), probability of the --positive class.",
)
@click.option("--positive", default=None, help="Class the submission scores (default: the second of two).")
@click.option(
    "--clip",
    nargs=2,
    type=float,
    default=(0.025, 0.975),
    show_default=True,
    metavar="LO HI",
    help="Clip submitted probabilities to [LO, HI] (0 1: no clipping).",
)
@click.option("--tta", is_flag=True, help="Average each image's probabilities with its mirror image's.")
@click.option("--tta-crops", is_flag=True, help="Also average over the four corners zoomed in (6 views).")
@batch_option
@workers_option
@engine_option
def predict(
    run_dir, inputs, csv_path, submission, positive, clip, tta, tta_crops, batch_size, workers, engine
) -> None:
    """Predict the class of INPUTS (files or folders) with the model in RUN (or an exported .onnx)."""
    from imagefit.inference.submission import Submission
    from imagefit.runs import load

    classifier = load(run_dir)
    scoring = Submission(classifier.classes, positive, clip) if submission else None  # checked first
    preds = classifier.predict(
        inputs,
        tta="crops" if tta_crops else tta,
        batch_size=batch_size,
        workers=workers,
        engine=engine,
    )
    for path, label, prob in zip(preds.paths, preds.labels, preds.probabilities.max(1), strict=True):
        click.echo(f"{label}\t{prob:.4f}\t{path}")
    if preds.errors:
        click.echo(f"skipped {len(preds.errors)} unreadable image(s)", err=True)
    if csv_path:
        preds.to_csv(csv_path)
        click.echo(f"wrote {csv_path}", err=True)
    if scoring:
        scoring.write(preds, submission)
        click.echo(
            f"wrote {submission} (id, p({scoring.positive}) clipped to {list(scoring.clip)})", err=True
        )


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Output folder (default: RUN/evaluation).")
@click.option(
    "--split",
    type=click.Choice(["valid", "train"]),
    default="valid",
    show_default=True,
    help="Which split of a DATA/train/ + DATA/valid/ folder to evaluate (a folder of class folders: all).",
)
@click.option(
    "--images",
    "n_images",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Images per gallery.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random galleries.")
@batch_option
@workers_option
@engine_option
def evaluate(run_dir, data, out, split, n_images, seed, batch_size, workers, engine) -> None:
    """Evaluate the model in RUN on the labelled images of DATA: metrics, confusion matrix, galleries."""
    from imagefit.evaluate import confusion_text
    from imagefit.evaluate import evaluate as run_evaluation

    m = run_evaluation(
        run_dir,
        data,
        out=out,
        split=split,
        n_images=n_images,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
        engine=engine,
    )
    top_k = "".join(f"  top-{k} {v:.4f}" for k, v in m["top_k_accuracy"].items())
    click.echo(f"accuracy {m['accuracy']:.4f}  loss {m['loss']:.4f}{top_k}  ({m['n']} images)")
    click.echo(confusion_text(m["confusion_matrix"], m["classes"]))
    for name, stats in m["per_class"].items():
        click.echo(
            f"{name}: precision {stats['precision']:.3f}  recall {stats['recall']:.3f}  "
            f"f1 {stats['f1']:.3f}  support {stats['support']}"
        )
    if m["skipped"]:
        click.echo(f"skipped {len(m['skipped'])} unreadable image(s), listed in evaluation.json", err=True)
    click.echo(f"wrote {m['out']}/evaluation.json, the figures and report.html")


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), help="HTML file (default: RUN/report.html).")
def report(run_dir, out) -> None:
    """Write RUN's self-contained HTML report: config, curves, metrics, confusion matrix, galleries.

    The evaluation part comes from RUN/evaluation/ (written by training or imagefit evaluate).
    """
    from imagefit.evaluate.report import report as run

    click.echo(f"wrote {run(run_dir, out)}")


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True
)
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Output file (default: in RUN).")
@click.option("--dynamic-batch", is_flag=True, help="Accept any batch size (ONNX).")
@click.option(
    "--batch-size",
    "-b",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Fixed batch size of the exported graph when not --dynamic-batch.",
)
def export(run_dir, fmt, out, dynamic_batch, batch_size) -> None:
    """Export the classifier in RUN as ONNX or TorchScript, checked against PyTorch."""
    from imagefit.export import export as run

    result = run(run_dir, fmt, out, dynamic_batch, batch_size)
    click.echo(f"wrote {result.path}  (max abs difference from PyTorch: {result.max_abs_diff:.2e})")


@cli.command()
@click.argument("source", metavar="MODEL_OR_RUN")
@click.option(
    "--image-size",
    type=click.IntRange(min=8),
    default=None,
    help="Square input size (default: the model's; small CNNs: 28).",
)
@click.option("--channels", type=click.IntRange(min=1), default=None, help="Small CNNs: input channels.")
@click.option(
    "--classes",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Small CNNs: number of outputs.",
)
def summary(source, image_size, channels, classes) -> None:
    """Every layer of a model with its output shape and parameters, like Keras summary().

    MODEL_OR_RUN is a run folder, a timm or registry name, or a small-CNN preset or spec.
    """
    from imagefit.explain.summary import summarize

    model, input_size = _summary_model(source, image_size, channels, classes)
    click.echo(summarize(model, input_size).table())


def _summary_model(source: str, image_size, channels, classes):
    from imagefit.features.embed import model_source
    from imagefit.models.small_cnn import PRESETS, SmallCNN

    if source in PRESETS or ("@" in source and not Path(source).exists()):
        size = image_size or 28
        return SmallCNN(source, channels or 1, classes, size), (channels or 1, size, size)
    model, data_config, _ = model_source(source, "none")
    c, h, w = data_config["input_size"]
    return model, (c, image_size or h, image_size or w)


@cli.command()
@click.argument("source", metavar="MODEL_OR_RUN")
@click.option("--image", type=click.Path(path_type=Path), help="Also draw this image's feature maps.")
@click.option("--layer", default=None, help="Layer whose feature maps to draw (default: the first conv).")
@weights_option
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for kernels.png and feature_maps.png.",
)
def kernels(source, image, layer, weights, out) -> None:
    """The first convolution's filters as an image grid, and optionally an image's feature maps."""
    from imagefit.explain.kernels import feature_maps, first_conv, kernel_grid, save_grid
    from imagefit.features.embed import model_source

    model, data_config, _ = model_source(source, _weights(weights))
    name, conv = first_conv(model)
    path = save_grid(kernel_grid(conv), out / "kernels.png", f"{name}: {conv.out_channels} filters")
    click.echo(f"wrote {path}")
    if image is not None:
        maps = feature_maps(model, data_config, image, layer or name)
        title = f"{layer or name} on {image.name}: {len(maps)} maps"
        click.echo(f"wrote {save_grid(maps, out / 'feature_maps.png', title)}")


@cli.command()
@click.argument("source", metavar="MODEL_OR_RUN")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="Embedding file (.safetensors, with a .json sidecar).",
)
@click.option("--layer", default="pre-logits", show_default=True, help="pre-logits or a module name.")
@click.option("--pool", type=click.Choice(["avg", "max"]), default="avg", show_default=True)
@click.option("--flip", is_flag=True, help="Average each image's vector with its mirror image's.")
@weights_option
@batch_option
@workers_option
@engine_option
def features(source, folder, out, layer, pool, flip, weights, batch_size, workers, engine) -> None:
    """Embeddings of every image under DIR, from a backbone name or a run folder."""
    from imagefit.features.embed import features as run
    from imagefit.features.store import embeddings_file

    data = run(
        source,
        folder,
        out,
        layer,
        pool,
        flip,
        _weights(weights),
        batch_size=batch_size,
        workers=workers,
        engine=engine,
    )
    if data is None:  # a torchrun rank other than 0: its share is in the store
        return
    path = embeddings_file(out)
    click.echo(f"{len(data.paths)} embeddings of size {data.vectors.shape[1]} -> {path}")
    if data.skipped:
        click.echo(f"skipped {len(data.skipped)} unreadable image(s), listed in the sidecar", err=True)


@cli.command()
@click.argument("index", type=click.Path(path_type=Path))
@click.argument("queries", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-k", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--metric",
    type=click.Choice(["euclidean", "cosine"]),
    default=None,
    help="Default: the index's, or euclidean for an embedding file.",
)
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Write a picture of the results (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per query.")
@click.option("--model", default=None, help="Embed new queries with this model (default: the index's).")
@click.option("--layer", default=None, help="Embed new queries from this layer (default: the index's).")
def similar(index, queries, k, metric, out, as_json, model, layer) -> None:
    """The K images of INDEX nearest to each query image.

    INDEX is a folder written by imagefit index (loaded, not rebuilt), or an embedding file from
    imagefit features (either file of the pair, or the name given to its -o).
    """
    from imagefit.features.similar import similar as run

    results = run(index, list(queries), k=k, metric=metric, out=out, model=model, layer=layer)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for item in results:
            click.echo(item["query"])
            for n in item["neighbours"]:
                click.echo(f"  {n['distance']:.4f}  {n['path']}")
    if out:
        click.echo(f"wrote {out}", err=True)


@cli.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="Cosine similarity from which two images are duplicates.",
)
@model_option
@weights_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of groups.")
@batch_option
@workers_option
@engine_option
def dedupe(folder, threshold, model, weights, as_json, batch_size, workers, engine) -> None:
    """Groups of near-duplicate images under DIR (re-saved, resized or mirrored copies)."""
    from imagefit.features.dedupe import dedupe as run

    groups = run(
        folder, threshold, model, _weights(weights), batch_size=batch_size, workers=workers, engine=engine
    )
    if as_json:
        click.echo(json.dumps([[str(p) for p in g] for g in groups], indent=2))
        return
    for n, group in enumerate(groups, 1):
        click.echo(f"group {n}:")
        for path in group:
            click.echo(f"  {path}")
    click.echo(f"{len(groups)} group(s) of near-duplicates", err=True)


@cli.command()
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("demo"), show_default=True)
def demo(out: Path) -> None:
    """Write scikit-learn's digits as class folders, train on them, and predict a few."""
    from imagefit.demo import write_digits
    from imagefit.train import train as run

    data = write_digits(out / "digits")
    click.echo(f"dataset: {data} (scikit-learn's handwritten digits as PNG class folders)")
    result = run(data, out=out / "run")
    _print_metrics(result.metrics)
    sample = sorted((data / "valid").glob("*/*.png"))[::36]
    preds = result.classifier.predict(sample, progress=False)
    for path, label in zip(preds.paths, preds.labels, strict=True):
        click.echo(f"  {path.relative_to(data)} -> {label}")
    click.echo(f"run folder: {result.run_dir}  (next: imagefit predict {result.run_dir} IMAGES)")


# --- check: a dataset folder's problems, file by file ---------------------------------------------


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--fix", is_flag=True, help="Move unusable files into the quarantine folder (never deletes).")
@click.option(
    "--quarantine",
    type=click.Path(path_type=Path),
    default=None,
    help="Where --fix moves files (default: DATA-quarantine beside DATA).",
)
@click.option("--quick", is_flag=True, help="Read headers and end markers only, not every pixel.")
@workers_option
def check(data, fix, quarantine, quick, workers) -> None:
    """Report every file under DATA that imagefit cannot use, and dataset problems, like a linter.

    Exit code 0 when everything left can be used, 3 when unusable files or layout errors remain.
    """
    from imagefit.data.check import check as run

    report = run(data, fix=fix, quarantine=quarantine, quick=quick, workers=workers or None)
    for line in report.lines():
        click.echo(line)
    click.echo(report.summary(), err=True)
    if report.remaining:
        hint = "" if fix else ": imagefit check DATA --fix moves them to a quarantine folder"
        click.echo(f"{len(report.remaining)} unusable file(s) left{hint}", err=True)
    if report.dataset_error:
        click.echo("the folder cannot be trained on as it is: see the layout error above", err=True)
    sys.exit(report.exit_code)


# --- theme maps from aerial tiles (imagefit.maps) ---------------------------------------------------


def _refs(values: tuple[str, ...]) -> list[str]:
    return [ref for value in values for ref in value.split(",") if ref]


def _roi(value: str | None):
    from imagefit.maps.tiles import parse_roi

    return parse_roi(value) if value else None


@cli.command("map-train")
@click.argument("tiles", type=click.Path(path_type=Path))
@click.option("--train", "train_refs", multiple=True, required=True, help="Training refs (repeat, or a,b,c).")
@click.option("--valid", "valid_ref", required=True, help="Validation ref (mapped after every epoch).")
@click.option(
    "--patch", type=click.IntRange(min=1), default=None, help="Patch size (default 28; backbones 32)."
)
@click.option(
    "--crop",
    type=click.IntRange(min=1),
    default=None,
    help="Backbones: side of the training crops, every patch position in them a target (default 192).",
)
@click.option(
    "--model", "-m", default="larger_model", show_default=True, help="Small-CNN preset/spec or backbone."
)
@weights_option
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--steps", type=click.IntRange(min=1), default=200, show_default=True, help="Batches per epoch."
)
@click.option(
    "--batch-size",
    "-b",
    type=click.IntRange(min=1),
    default=None,
    help="Default 64 patches; backbones 8 crops.",
)
@click.option("--lr", type=float, default=None, help="Peak learning rate (default 1e-3; backbones 5e-4).")
@click.option("--balance", is_flag=True, help="Draw every class equally often.")
@click.option("--no-augment", is_flag=True, help="No rotations or mirror images of patches.")
@click.option(
    "--ignore", type=click.IntRange(0, 65535), default=None, help="Label value to leave out (e.g. 0)."
)
@click.option("--roi", default=None, help="Validation map region x0,y0,x1,y1 (default: first 300x300).")
@click.option("--stages", default=None, help="Backbones: finetune stages (default top4:EPOCHS:LR).")
@click.option(
    "--monitor",
    type=click.Choice(["val_loss", "val_acc"]),
    default=None,
    help="Keep the epoch best by this (default val_loss; backbones val_acc).",
)
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Run folder (default: new under runs/).")
@click.option("--seed", type=int, default=0, show_default=True)
def map_train(tiles, train_refs, valid_ref, patch, crop, model, weights, epochs, steps, batch_size, lr,
              balance, no_augment, ignore, roi, stages, monitor, out, seed) -> None:  # fmt: skip
    """Train a patch classifier on the tiles of TILES (3band/, theme/, key-theme.txt)."""
    from imagefit.maps.train import train_map

    result = train_map(
        tiles, _refs(train_refs), valid_ref, out=out, seed=seed, model=model, patch=patch, crop=crop,
        weights=weights, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, balance=balance,
        augment=not no_augment, ignore=ignore, roi=_roi(roi), stages=stages, monitor=monitor,
    )  # fmt: skip
    m = result.metrics
    v, vm = m["valid_patches"], m["valid_map"]
    click.echo(f"valid positions: accuracy {v['accuracy']:.4f}  loss {v['loss']:.4f}  ({v['n']} patches)")
    click.echo(f"valid map {vm['ref']}: pixel accuracy {vm['pixel_accuracy']:.4f}  mIoU {vm['miou']:.4f}")
    click.echo(f"run folder: {result.run_dir}  (next: imagefit map {result.run_dir} TILE)")


@cli.command("map")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("tile", type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), help="GeoTIFF to write (default: TILE-map.tif)."
)
@click.option("--png", is_flag=True, help="Also write a coloured PNG with a legend beside it.")
@click.option("--truth", type=click.Path(path_type=Path), help="Label raster: pixel accuracy, IoU, mIoU.")
@click.option(
    "--ignore", type=click.IntRange(0, 65535), default=None, help="Label value to leave out (e.g. 0)."
)
@click.option("--naive", is_flag=True, help="Classify patch by patch (the slow reference).")
@click.option("--roi", default=None, help="Map only the region x0,y0,x1,y1.")
@click.option("--window", type=click.IntRange(min=16), default=1024, show_default=True, help="Window side.")
@click.option("--engine", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True)
def map_command(run_dir, tile, out, png, truth, ignore, naive, roi, window, engine) -> None:
    """A dense theme map of TILE with the patch classifier in RUN (a map-train run)."""
    from imagefit.maps.api import map_tile

    result = map_tile(run_dir, tile, out, png, truth, ignore, naive, engine, window, _roi(roi))
    tm = result.theme_map
    rate = tm.index.size / max(tm.seconds, 1e-9)
    click.echo(
        f"mapped {tm.region.width}x{tm.region.height} pixels in {tm.seconds:.1f} s ({rate:,.0f} pixels/s)"
    )
    if result.metrics:
        m = result.metrics
        click.echo(f"pixel accuracy {m['pixel_accuracy']:.4f}  mIoU {m['miou']:.4f}  ({m['pixels']} pixels)")
        for name, iou in m["iou"].items():
            click.echo(f"  {name}: IoU {'-' if iou is None else f'{iou:.4f}'}")
    for path in result.files:
        click.echo(f"wrote {path}")


# --- index (issue 18): one block, to move into the cli package ------------------------------------


@cli.command("index")
@click.argument("source", metavar="EMBEDDINGS|DIR", type=click.Path(path_type=Path, exists=True))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Index folder.")
@click.option(
    "--model",
    "-m",
    default=None,
    help=f"DIR: backbone or run folder (default: the index's model, else {DEFAULT_BACKBONE}).",
)
@click.option(
    "--metric", type=click.Choice(["euclidean", "cosine"]), default=None, help="New index: default euclidean."
)
@weights_option
@batch_option
@workers_option
@engine_option
def index_command(source, out, model, metric, weights, batch_size, workers, engine) -> None:
    """Make a similarity index of DIR or of an embedding file, or add the new images to it.

    Exact below 50,000 images, IVF-PQ with exact re-ranking above; imagefit similar OUT loads it.
    """
    from imagefit.features.indexing import index

    options = {"batch_size": batch_size, "workers": workers, "engine": engine} if source.is_dir() else {}
    built = index(source, out, model, metric, _weights(weights), **options)
    click.echo(f"{len(built)} images in {out} ({built.meta['kind']}, {built.meta['metric']})")


def main() -> None:
    """Console-script entry point."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")  # file names that are not valid UTF-8
    cli(prog_name="imagefit")
