"""imagefit check and demo: a dataset folder's problems, and a first run on generated digits."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from imagefit.cli.options import workers_option
from imagefit.cli.train import print_metrics


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


@click.command()
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("demo"), show_default=True)
def demo(out: Path) -> None:
    """Write scikit-learn's digits as class folders, train on them, and predict a few."""
    from imagefit.demo import write_digits
    from imagefit.train import train as run

    data = write_digits(out / "digits")
    click.echo(f"dataset: {data} (scikit-learn's handwritten digits as PNG class folders)")
    result = run(data, out=out / "run")
    print_metrics(result.metrics)
    sample = sorted((data / "valid").glob("*/*.png"))[::36]
    preds = result.classifier.predict(sample, progress=False)
    for path, label in zip(preds.paths, preds.labels, strict=True):
        click.echo(f"  {path.relative_to(data)} -> {label}")
    click.echo(f"run folder: {result.run_dir}  (next: imagefit predict {result.run_dir} IMAGES)")
