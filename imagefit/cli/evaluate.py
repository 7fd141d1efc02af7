"""imagefit evaluate and report: a run's model measured on labelled images, and its HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from imagefit.cli.options import inference_options


@click.command()
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
@click.option(
    "--unknown",
    type=click.Path(path_type=Path),
    help="A folder of images of no training class: how well the run tells them from DATA's.",
)
@inference_options
def evaluate(run_dir, data, out, split, n_images, seed, unknown, batch_size, workers, engine) -> None:
    """Evaluate the model in RUN on the labelled images of DATA: metrics, confusion matrix, galleries."""
    from imagefit.evaluate import confusion_text
    from imagefit.evaluate import evaluate as evaluate_run

    m = evaluate_run(
        run_dir,
        data,
        out=out,
        split=split,
        n_images=n_images,
        seed=seed,
        unknown=unknown,
        batch_size=batch_size,
        workers=workers,
        engine=engine,
    )
    if m.get("task") == "multilabel":
        click.echo(
            f"samples-F1 {m['samples_f1']:.4f}  micro-F1 {m['micro_f1']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
            f"mAP {m['mAP']:.4f}  exact match {m['exact_match']:.4f}  ({m['n']} images)"
        )
    else:
        top_k = "".join(f"  top-{k} {v:.4f}" for k, v in m["top_k_accuracy"].items())
        click.echo(f"accuracy {m['accuracy']:.4f}  loss {m['loss']:.4f}{top_k}  ({m['n']} images)")
        click.echo(confusion_text(m["confusion_matrix"], m["classes"]))
    for name, stats in (m.get("per_class") or m.get("per_label") or {}).items():
        click.echo(
            f"{name}: precision {stats['precision']:.3f}  recall {stats['recall']:.3f}  "
            f"f1 {stats['f1']:.3f}  support {stats['support']}"
        )
    if "ece" in m:
        click.echo(f"ece {m['ece']:.4f}  before calibration {m['ece_uncalibrated']:.4f}")
    if "ood_auroc" in m:
        click.echo(
            f"unknown images: auroc {m['ood_auroc']:.4f}  fpr at 95% tpr {m['ood_fpr_at_95tpr']:.4f}  "
            f"called unknown {m['ood_unknown_share']:.1%}  ({m['n_unknown']} images)"
        )
    if m["skipped"]:
        click.echo(f"skipped {len(m['skipped'])} unreadable image(s), listed in evaluation.json", err=True)
    click.echo(f"wrote {m['out']}/evaluation.json, the figures and report.html")


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), help="HTML file (default: RUN/report.html).")
def report(run_dir, out) -> None:
    """Write RUN's self-contained HTML report: config, curves, metrics, confusion matrix, galleries.

    The evaluation part comes from RUN/evaluation/ (written by training or imagefit evaluate).
    """
    from imagefit.evaluate.report import report as write_report

    click.echo(f"wrote {write_report(run_dir, out)}")
