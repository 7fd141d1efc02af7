"""imagefit predict and imagenet: a trained run's classes, or ImageNet's, for image files."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from imagefit.cli.options import model_option, run_inference_options, weights_option, weights_value


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write all probabilities as CSV.")
@click.option(
    "--submission",
    type=click.Path(path_type=Path),
    help="Write a Kaggle file: id (from the file name), probability of the --positive class; "
    "multi-label models: image_name,tags (the predicted labels, space-separated).",
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
@click.option(
    "--threshold",
    type=float,
    help="Multi-label models: predict each label from this probability (default: the run's per-label "
    "thresholds, chosen for the best F1).",
)
@click.option(
    "--reject",
    is_flag=True,
    help="Write the class of an image unlike the training images as 'unknown' (runs that keep a "
    "familiarity; the CSV's familiarity and unknown columns are written either way).",
)
@click.option("--tta", is_flag=True, help="Average each image's probabilities with its mirror image's.")
@click.option("--tta-crops", is_flag=True, help="Also average over the four corners zoomed in (6 views).")
@run_inference_options
def predict(
    run_dir,
    inputs,
    csv_path,
    submission,
    positive,
    clip,
    threshold,
    reject,
    tta,
    tta_crops,
    batch_size,
    workers,
    engine,
) -> None:
    """Predict the class of INPUTS (files or folders) with the model in RUN (or an exported .onnx)."""
    from imagefit.data.paths import collect_inputs
    from imagefit.errors import ImagefitError
    from imagefit.inference.submission import Submission
    from imagefit.runs.quick import engines_matter, predictor

    quick = not (tta or tta_crops) and engine == "auto"
    with contextlib.suppress(ImagefitError):  # a bad input is said after the run is checked, as before
        quick = quick and not engines_matter(run_dir, len(collect_inputs(inputs)))
    classifier = predictor(run_dir, quick=quick)
    multilabel = getattr(classifier, "multilabel", False)
    if threshold is not None and not multilabel:
        raise click.UsageError("--threshold applies to multi-label models: this one predicts one class")
    if multilabel and positive is not None:
        raise click.UsageError("--positive applies to single-label models: a multi-label model submits tags")
    scoring = None
    if submission and not multilabel:
        scoring = Submission(classifier.classes, positive, clip)  # checked before predicting
    preds = classifier.predict(
        inputs,
        tta="crops" if tta_crops else tta,
        batch_size=batch_size,
        workers=workers,
        engine=engine,
    )
    if threshold is not None:
        preds = preds.with_threshold(threshold)
    if reject:
        preds = preds.rejecting()
    if preds.multilabel:
        for path, labels in zip(preds.paths, preds.labels, strict=True):
            click.echo(f"{' '.join(labels)}\t{path}")
    else:
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
    elif submission:
        from imagefit.inference.tag_submission import write_tag_submission

        write_tag_submission(preds, submission)
        click.echo(f"wrote {submission} (image_name, tags: the labels predicted)", err=True)


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_option
@weights_option
@click.option("--top", "-k", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per image.")
def imagenet(images, model, weights, top, as_json) -> None:
    """Top-k ImageNet classes of IMAGES (files or folders)."""
    from imagefit.inference.imagenet import imagenet as imagenet_top_k

    results = imagenet_top_k(images, model=model, weights=weights_value(weights), top=top, progress=False)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for item in results:
        click.echo(item["path"])
        for p in item["predictions"]:
            click.echo(f"  {p['probability']:6.1%}  {p['wnid']}  {p['name']}")
