"""imagefit audit and fix: a dataset's likely label errors, outliers and duplicates; decisions applied."""

from __future__ import annotations

from pathlib import Path

import click

from imagefit.cli.options import inference_options, model_option, weights_option, weights_value

TABLE_HELP = {
    "--images": "Folder the image names of a label table start from (default: the table's folder).",
    "--valid": "A second table of validation rows, when DATA's table has no is_valid or split column.",
    "--path-col": "The table's column of image names (default: guessed).",
    "--label-col": "The table's column of labels (default: guessed; several 0/1 columns: one-hot).",
    "--label-delim": "Separator of several labels in one cell (default: guessed).",
}


def table_options(command, valid: bool = True):
    """--images, --valid, --path-col, --label-col, --label-delim: how DATA's label table is read."""
    for name, text in reversed(TABLE_HELP.items()):
        if name == "--valid" and not valid:
            continue
        kind = click.Path(path_type=Path) if name in ("--images", "--valid") else str
        command = click.option(name, type=kind, help=text)(command)
    return command


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), help="Output folder (default: audits/<DATA name>)."
)
@click.option(
    "--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Cross-validation folds."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--duplicates",
    type=click.Choice(["fast", "thorough", "none"]),
    default="fast",
    show_default=True,
    help="fast: close embeddings confirmed pixel by pixel; thorough: imagefit dedupe's search (slower).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Cosine similarity from which two images may be near-duplicates (default 0.95 fast, 0.9 thorough).",
)
@table_options
@model_option
@weights_option
@inference_options
def audit(
    data, out, folds, seed, duplicates, threshold, model, weights, batch_size, workers, engine, **table
):
    """Likely label errors, outliers, near-duplicates and unusable files of DATA, ranked on one page."""
    from imagefit.audit import audit as audit_data

    result = audit_data(
        data,
        out,
        folds=folds,
        seed=seed,
        model=model,
        weights=weights_value(weights),
        threshold=threshold,
        duplicates=duplicates,
        batch_size=batch_size,
        workers=workers,
        engine=engine,
        **table,
    )
    for kind, n in result.summary["counts"].items():
        click.echo(f"{kind}: {n}")
    for f in result.of_kind("label_issue")[:10]:
        click.echo(f"  #{f.rank} {f.path}: {f.given} -> {f.suggested} ({f.score:.3f})")
    click.echo(
        f"wrote {result.out / 'audit.csv'}, audit.json, audit.html "
        f"(next: set actions in audit.csv, then imagefit fix {data} audit.csv)"
    )


def fix_table_options(command):
    """The table options of `imagefit fix` (no --valid: every row of the table is fixed alike)."""
    return table_options(command, valid=False)


@click.command()
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.argument("fixes", metavar="FIXES.csv", type=click.Path(path_type=Path), required=False)
@click.option("--undo", "undo_journal", type=click.Path(path_type=Path), help="Put back what a fix moved.")
@click.option("--journal", type=click.Path(path_type=Path), help="Journal file (default: FIXES.csv.journal).")
@click.option(
    "--quarantine", type=click.Path(path_type=Path), help="Where removed files go (default: DATA-quarantine)."
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    help="A table's corrected copy (default: TABLE.fixed.csv).",
)
@fix_table_options
def fix(data, fixes, undo_journal, journal, quarantine, out, **table) -> None:
    """Apply FIXES.csv (path,action,label: relabel, remove, keep) to DATA by moving files, never deleting."""
    from imagefit.audit import fix as apply_fixes
    from imagefit.audit import undo

    if undo_journal is not None:
        restored = undo(undo_journal)
        click.echo(f"put back {len(restored)} file(s) from {undo_journal}")
        return
    if data is None or fixes is None:
        raise click.UsageError("give DATA and FIXES.csv, or --undo JOURNAL")
    if out is not None:
        table["out"] = out
    result = apply_fixes(data, fixes, journal=journal, quarantine=quarantine, **table)
    if not hasattr(result, "moves"):
        click.echo(
            f"wrote {result.table}: {result.relabelled} row(s) relabelled, {result.removed} removed "
            f"({data} is unchanged)"
        )
        return
    for move in result.moves:
        click.echo(f"{move.action}: {move.source} -> {move.target}")
    click.echo(f"moved {len(result.moves)} file(s); undo: imagefit fix --undo {result.journal}")
