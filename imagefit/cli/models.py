"""imagefit summary, kernels and export: look inside a model, and write it for other runtimes."""

from __future__ import annotations

from pathlib import Path

import click

from imagefit.cli.options import weights_option, weights_value


@click.command()
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
    from imagefit.explain.summary import summary as model_summary

    click.echo(model_summary(source, image_size, channels, classes).table())


@click.command()
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
    from imagefit.explain.kernels import kernels as draw_kernels

    for path in draw_kernels(source, image, layer, weights_value(weights), out):
        click.echo(f"wrote {path}")


@click.command()
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
    from imagefit.export import export as export_run

    result = export_run(run_dir, fmt, out, dynamic_batch, batch_size)
    click.echo(f"wrote {result.path}  (max abs difference from PyTorch: {result.max_abs_diff:.2e})")
