"""imagefit runs and imagefit compare: many run folders at once."""

from __future__ import annotations

import json
from pathlib import Path

import click

from imagefit.overview.listing import RunSummary

COLUMNS = (  # (field, heading, format)
    ("run", "run", "{}"),
    ("strategy", "strategy", "{}"),
    ("backbone", "backbone", "{}"),
    ("data", "data", "{}"),
    ("train_images", "train", "{}"),
    ("valid_accuracy", "val_acc", "{:.4f}"),
    ("valid_loss", "val_loss", "{:.4f}"),
    ("epochs", "epochs", "{}"),
    ("seconds", "seconds", "{:.0f}"),
    ("date", "date", "{}"),
)


@click.command()
@click.argument("folder", type=click.Path(path_type=Path), default="runs")
@click.option(
    "--sort",
    metavar="FIELD",
    help="Order by a field: valid_accuracy, valid_loss, seconds, epochs, strategy... "
    "(scores and counts best first; default: date, oldest first).",
)
@click.option("--json", "as_json", is_flag=True, help="Every field of every run as JSON.")
def runs(folder: Path, sort: str | None, as_json: bool) -> None:
    """A table of the runs under FOLDER (default runs/): strategy, backbone, data, scores, time, date."""
    from imagefit.overview.listing import as_rows, list_runs

    found = list_runs(folder, sort)
    if as_json:
        click.echo(json.dumps(as_rows(found), indent=2))
    elif not found:
        click.echo(f"no run folders under {folder}")
    else:
        click.echo(table(found))


def table(found: list[RunSummary]) -> str:
    """The runs as aligned text columns; the data folder by its name, '-' where a run has no value."""
    rows = [[heading for _, heading, _ in COLUMNS]]
    for run in found:
        values = {**vars(run), "data": Path(run.data).name or run.data}
        if run.status != "done":
            values["run"] = f"{run.run} ({run.status})"
        rows.append(["-" if values[f] is None else form.format(values[f]) for f, _, form in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


@click.command()
@click.argument("run_dirs", metavar="RUN RUN...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default="compare.html",
    show_default=True,
    help="Page to write.",
)
def compare(run_dirs: tuple[Path, ...], out: Path) -> None:
    """One HTML page comparing RUNs: scores, learning curves overlaid, differences, confusion matrices."""
    from imagefit.overview.compare import compare as write_page

    click.echo(f"comparison of {len(run_dirs)} runs: {write_page(run_dirs, out)}")
