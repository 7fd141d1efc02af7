"""imagefit check and demo: a dataset folder's problems; a first run on the images shipped with it."""

from __future__ import annotations

import os
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
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def demo(out: Path, no_progress: bool) -> None:
    """A first run on real images shipped with imagefit: classify aerial photos, map an aerial image.

    Offline, a few minutes on two CPU cores; everything is written under OUT, and running it again
    replaces what an earlier demo wrote there.
    """
    # idle OpenMP threads yield their core instead of spinning: much faster steps on a busy machine
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from imagefit.demo import demo as run_demo

    result = run_demo(out, progress=not no_progress, say=click.echo)
    click.echo(f"done in {result.seconds['total']:.0f} s; everything is under {out}/. Next, try:")
    for command in result.next_commands():
        click.echo(f"  {command}")
