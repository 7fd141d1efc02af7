"""imagefit map-train and map: patch classifiers on aerial tiles, and dense theme maps."""

from __future__ import annotations

from pathlib import Path

import click

from imagefit.cli.options import weights_option


def _refs(values: tuple[str, ...]) -> list[str]:
    return [ref for value in values for ref in value.split(",") if ref]


def join_values(args: list[str], flag: str) -> list[str]:
    """`FLAG A B C` (values as people type them, up to the next option) read as `FLAG A,B,C`."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg, i = args[i], i + 1
        if arg == "--":
            return out + args[i - 1 :]
        if arg == flag and i < len(args) and not args[i].startswith("-"):
            out.append(arg)
            arg, i = args[i], i + 1
        elif not arg.startswith(flag + "="):
            out.append(arg)
            continue
        while i < len(args) and not args[i].startswith("-"):
            arg, i = f"{arg},{args[i]}", i + 1
        out.append(arg)
    return out


class MapTrainCommand(click.Command):
    """map-train, reading `--train A B C` as `--train A,B,C`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, join_values(args, "--train"))


def _roi(value: str | None):
    from imagefit.maps.tiles import parse_roi

    return parse_roi(value) if value else None


@click.command("map-train", cls=MapTrainCommand)
@click.argument("tiles", type=click.Path(path_type=Path))
@click.option(
    "--train", "train_refs", multiple=True, required=True, help="Training refs: A B C, A,B,C or repeated."
)
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
    "--model",
    "-m",
    default="larger_model",
    show_default=True,
    help="Small-CNN preset/spec, backbone, or decoder: unet, fpn, deeplabv3plus.",
)
@weights_option
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Default 5; decoders 4.")
@click.option(
    "--steps", type=click.IntRange(min=1), default=None, help="Batches per epoch (default 200; decoders 100)."
)
@click.option(
    "--batch-size",
    "-b",
    type=click.IntRange(min=1),
    default=None,
    help="Default 64 patches; backbones 8 crops.",
)
@click.option(
    "--lr", type=float, default=None, help="Peak learning rate (default 1e-3; backbones 5e-4; decoders 3e-3)."
)
@click.option(
    "--dice", type=click.FloatRange(min=0), default=None, help="Decoders: Dice loss weight (default 1)."
)
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
              dice, balance, no_augment, ignore, roi, stages, monitor, out, seed) -> None:  # fmt: skip
    """Train a patch classifier on the tiles of TILES (3band/, theme/, key-theme.txt)."""
    from imagefit.maps.train import train_map

    result = train_map(
        tiles, _refs(train_refs), valid_ref, out=out, seed=seed, model=model, patch=patch, crop=crop,
        weights=weights, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, balance=balance,
        augment=not no_augment, ignore=ignore, roi=_roi(roi), stages=stages, monitor=monitor,
        **({} if dice is None else {"dice": dice}),
    )  # fmt: skip
    m = result.metrics
    v, vm = m["valid_patches"], m["valid_map"]
    click.echo(f"valid positions: accuracy {v['accuracy']:.4f}  loss {v['loss']:.4f}  ({v['n']} patches)")
    click.echo(f"valid map {vm['ref']}: pixel accuracy {vm['pixel_accuracy']:.4f}  mIoU {vm['miou']:.4f}")
    click.echo(f"run folder: {result.run_dir}  (next: imagefit map {result.run_dir} TILE)")


@click.command("map")
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
    from imagefit.maps.mapping import map_tile

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
