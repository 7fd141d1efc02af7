"""The root command: commands imported on first use, user mistakes in one or two lines, logging."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from imagefit.errors import ImagefitError

log = logging.getLogger("imagefit")

# name -> (module, attribute, short help). The help is the command docstring's first sentence
# (a test checks they agree), so `imagefit --help` lists every command without importing one.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "index": (
        "imagefit.cli.embeddings",
        "index",
        "Make a similarity index of DIR or of an embedding file, or add the new images to it.",
    ),
    "audit": (
        "imagefit.cli.audit",
        "audit",
        "Likely label errors, outliers, near-duplicates and unusable files of DATA, ranked on one page.",
    ),
    "fix": (
        "imagefit.cli.audit",
        "fix",
        "Apply FIXES.csv (path,action,label: relabel, remove, keep) to DATA by moving files, never deleting.",
    ),
    "serve": (
        "imagefit.cli.serve",
        "serve",
        "Serve RUN over HTTP: POST /predict, GET /model, /health, and a page to try it at /.",
    ),
    "check": (
        "imagefit.cli.data",
        "check",
        "Report every file under DATA that imagefit cannot use, and dataset problems, like a linter.",
    ),
    "dedupe": (
        "imagefit.cli.embeddings",
        "dedupe",
        "Groups of near-duplicate images under DIR (re-saved, resized or mirrored copies).",
    ),
    "compare": (
        "imagefit.cli.overview",
        "compare",
        "One HTML page comparing RUNs: scores, learning curves overlaid, differences, confusion matrices.",
    ),
    "demo": (
        "imagefit.cli.data",
        "demo",
        "A first run on real images shipped with imagefit: classify aerial photos, map an aerial image.",
    ),
    "evaluate": (
        "imagefit.cli.evaluate",
        "evaluate",
        "Evaluate the model in RUN on the labelled images of DATA: metrics, confusion matrix, galleries.",
    ),
    "export": (
        "imagefit.cli.models",
        "export",
        "Export the classifier in RUN as ONNX or TorchScript, checked against PyTorch.",
    ),
    "features": (
        "imagefit.cli.embeddings",
        "features",
        "Embeddings of every image under DIR, from a backbone name or a run folder.",
    ),
    "imagenet": ("imagefit.cli.predict", "imagenet", "Top-k ImageNet classes of IMAGES (files or folders)."),
    "kernels": (
        "imagefit.cli.models",
        "kernels",
        "The first convolution's filters as an image grid, and optionally an image's feature maps.",
    ),
    "map": (
        "imagefit.cli.maps",
        "map_command",
        "Dense theme maps of INPUT tiles (files, folders, globs) with the patch classifier in RUN.",
    ),
    "map-train": (
        "imagefit.cli.maps",
        "map_train",
        "Train a patch classifier on the tiles of TILES (3band/, theme/, key-theme.txt).",
    ),
    "predict": (
        "imagefit.cli.predict",
        "predict",
        "Predict the class of INPUTS (files or folders) with the model in RUN (or an exported .onnx).",
    ),
    "report": (
        "imagefit.cli.evaluate",
        "report",
        "Write RUN's self-contained HTML report: config, curves, metrics, confusion matrix, galleries.",
    ),
    "runs": (
        "imagefit.cli.overview",
        "runs",
        "A table of the runs under FOLDER (default runs/): strategy, backbone, data, scores, time, date.",
    ),
    "similar": ("imagefit.cli.embeddings", "similar", "The K images of INDEX nearest to each query image."),
    "summary": (
        "imagefit.cli.models",
        "summary",
        "Every layer of a model with its output shape and parameters, like Keras summary().",
    ),
    "train": (
        "imagefit.cli.train",
        "train",
        "Train a classifier on DATA (class folders or a CSV/TSV label table) and write a run folder.",
    ),
}


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


def short_usage(exc: click.UsageError) -> ShortUsageError:
    """The same usage error, shown in two lines."""
    return exc if isinstance(exc, ShortUsageError) else ShortUsageError(exc.format_message(), exc.ctx)


class RootGroup(click.Group):
    """Commands from the COMMANDS table, imported when run; every error turned into an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            module, attr, _ = COMMANDS[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = [(name, self._short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, name: str, limit: int) -> str:
        if name in self.commands:  # imported already, or added by hand
            return self.commands[name].get_short_help_str(limit)
        return click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit)

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise short_usage(exc) from exc

    def invoke(self, ctx: click.Context):
        debug = "--debug" in sys.argv or ctx.params.get("debug", False)
        try:
            return super().invoke(ctx)
        except ImagefitError as exc:
            if debug:
                raise
            raise UserError(str(exc)) from exc
        except click.UsageError as exc:
            raise short_usage(exc) from exc
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


class _ProgressBarHandler(logging.Handler):
    """Log lines written between progress bars, not through them; each line in one write, so that the
    lines of processes sharing a stderr (the ranks of a torchrun world) never run into each other."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        tqdm.write(prefix + record.getMessage() + "\n", file=sys.stderr, end="")


def setup_logging(quiet: bool) -> None:
    """imagefit's messages on stderr: information and warnings, or only warnings."""
    log.handlers[:] = [_ProgressBarHandler()]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    setup_logging(quiet)
    if background:
        os.environ["IMAGEFIT_BACKGROUND"] = background  # decode workers inherit it


def main() -> None:
    """Console-script entry point."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")  # file names that are not valid UTF-8
    cli(prog_name="imagefit")
