"""imagefit check and demo: a dataset folder's problems, and a first run on generated digits."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from imagefit.cli.options import workers_option


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--fix", is_flag=True, help="Move unusable files into the quarantine folder (never deletes).")
@click.option(
    "--quarantine",
    type=click.Path(path_type=Path),
    default=None,
    help="Where --fix moves files (default: DATA-quarantine beside DATA).",
)
@click.option("--quick", is_flag=True, help="Read headers and end markers only, not every pixel.")
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    default=None,
    help="DATA is a label table: its image names start here (default: the table's folder).",
)
@workers_option
def check(data, fix, quarantine, quick, images, workers) -> None:
    """Report every file under DATA that imagefit cannot use, and dataset problems, like a linter.

    DATA may be a label table (CSV/TSV): the images it names are checked.
    Exit code 0 when everything left can be used, 3 when unusable files or layout errors remain.
    """
    from imagefit.data.check import check as check_data

    report = check_data(
        data, fix=fix, quarantine=quarantine, quick=quick, workers=workers or None, images=images
    )
    for line in report.lines():
        click.echo(line)
    click.echo(report.summary(), err=True)
    if report.remaining:
        hint = "" if fix else ": imagefit check DATA --fix moves them to a quarantine folder"
        click.echo(f"{len(report.remaining)} unusable file(s) left{hint}", err=True)
    if report.dataset_error:
        click.echo("the folder cannot be trained on as it is: see the layout error above", err=True)
    sys.exit(report.exit_code)


@click.command()
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("demo"), show_default=True)
@click.option("--epochs", type=int, default=12, show_default=True, help="Epochs of the CNN from scratch.")
def demo(out: Path, epochs: int) -> None:
    """A small CNN from scratch beside transfer on scikit-learn's digits; ImageNet top-5 of sample photos."""
    from imagefit.demo import WHY_SCRATCH
    from imagefit.demo import demo as make_demo

    result = make_demo(out, epochs=epochs)
    click.echo(
        f"dataset: {out / 'digits'} (scikit-learn's 1,797 handwritten 8x8 digits as PNG class folders)"
    )
    runs = {"scratch": "from scratch (larger_model, 28 px)", "transfer": "transfer (linear, Lite0)"}
    for key, name in runs.items():
        res = getattr(result, key)
        accuracy = res.metrics["valid"]["accuracy"]
        click.echo(f"{name:<36} valid accuracy {accuracy:.4f}  ({result.seconds[key]:.0f} s, {res.run_dir})")
    click.echo(WHY_SCRATCH)
    for item in result.photos:
        top = ", ".join(f"{p['name'].split(',')[0]} {p['probability']:.2f}" for p in item["predictions"])
        click.echo(f"imagenet {Path(item['path']).name}: {top}")
    click.echo(f"next: imagefit train YOUR_FOLDER, imagefit imagenet YOUR_PHOTOS (runs under {out})")
