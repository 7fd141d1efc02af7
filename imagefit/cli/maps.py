"""imagefit map-train and map: patch classifiers on aerial tiles, and dense theme maps."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from imagefit.cli.options import default_of, given_params, track_option, track_value
from imagefit.maps.mapping.defaults import DEFAULT_WINDOW, ENGINES
from imagefit.maps.training.options import (
    KIND_DEFAULTS,
    MONITORS,
    SEMI_METHODS,
    TRAINED_BLOCKS,
    VALID_ROI,
    MapTrainOptions,
)


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
    """map-train, reading `--train A B C` as `--train A,B,C`, and `--valid A B` as `--valid A,B`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, join_values(join_values(args, "--train"), "--valid"))


def _roi(value: str | None):
    from imagefit.maps.inputs.tileset import parse_roi

    return parse_roi(value) if value else None


def _bands(value: str | None):
    """`--bands 1,2,3` as (1, 2, 3); `all` (or nothing) as None."""
    if value is None or value.strip().lower() == "all":
        return None
    try:
        return tuple(int(b) for b in value.split(",") if b.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected band numbers such as 1,2,3 or 'all'") from None


def _ignore(value: str | None) -> int | str | None:
    """--ignore as the library takes it: a label value 0-65535, or a colour '#RRGGBB'."""
    from imagefit.maps.inputs.key import parse_ignore

    return parse_ignore(value)


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _help(name: str, text: str) -> str:
    """Help for map-train option `name`: `text` and its default, read from MapTrainOptions (the
    dataclass's own, or KIND_DEFAULTS' for each kind of model)."""
    value = default_of(MapTrainOptions, name)
    if value is not None:
        return f"{text} (default: {_shown(value)})."
    kinds: dict[str, list[str]] = {}
    for kind, defaults in KIND_DEFAULTS.items():
        if name in defaults:
            kinds.setdefault(_shown(defaults[name]), []).append(kind)
    shown = ", ".join(f"{' and '.join(names)} {value}" for value, names in kinds.items())
    return f"{text} (default: {shown})."


def _path_option(name: str, help: str, **kwargs):
    return click.option(name, type=click.Path(path_type=Path), default=None, help=help, **kwargs)


RUN_ARGS = ("tiles", "train_refs", "valid_ref", "out", "seed", "track")  # not MapTrainOptions fields
READ = {"bands": _bands, "roi": _roi, "ignore": _ignore}  # option values as MapTrainOptions takes them


def given_map_options(ctx: click.Context) -> dict:
    """The map-train options typed on the command line, named and typed as MapTrainOptions' fields."""
    given = given_params(ctx, RUN_ARGS)
    if given.pop("no_augment", False):
        given["augment"] = False
    if given.pop("no_calibrate", False):
        given["calibrate"] = False
    for name, read in READ.items():
        if name in given:
            given[name] = read(given[name])
    return {name: str(value) if isinstance(value, Path) else value for name, value in given.items()}


@click.command("map-train", cls=MapTrainCommand)
@click.argument("tiles", type=click.Path(path_type=Path), required=False)
@click.option(
    "--train",
    "train_refs",
    multiple=True,
    help="Training refs: A B C, A,B,C or repeated (default: all but --valid).",
)
@click.option(
    "--valid",
    "valid_ref",
    multiple=True,
    help="Validation refs: A B, A,B or repeated, pooled; the first is mapped after each epoch (default: with "
    "--train, the last other ref; else one image from each of up to 4 tiles, or the last of few refs).",
)
@_path_option("--images", "A folder of images (refs: their names), with --labels or --vector.")
@_path_option("--labels", "A folder of label rasters (values or colours) paired with --images by name.")
@click.option(
    "--label-pattern",
    default=None,
    help="How names pair, IMAGE=LABEL, e.g. '*_sat=*_mask' (default: guessed).",
)
@_path_option("--pairs", "A CSV with image,label columns (paths relative to it).")
@_path_option(
    "--vector", "Labels from a vector file's polygons (GeoPackage, shapefile...), with --attribute."
)
@click.option(
    "--attribute", default=None, help="The vector file's class attribute (names or values of the key)."
)
@_path_option("--key", "Key file: name<TAB>value or name<TAB>#RRGGBB lines (default: TILES/key-theme.txt).")
@click.option("--bands", default=None, help="Image bands to use, e.g. 1,2,3 (default: all but alpha).")
@click.option("--patch", type=click.IntRange(min=1), help=_help("patch", "Patch size"))
@click.option(
    "--crop",
    type=click.IntRange(min=1),
    help=_help(
        "crop", "Backbones and decoders: side of the training crops, every patch position in them a target"
    ),
)
@click.option(
    "--model",
    "-m",
    help=_help("model", "Small-CNN preset/spec, backbone, or decoder: unet, fpn, deeplabv3plus"),
)
@click.option(
    "--weights", help=_help("weights", "auto (offline: bundled or cached), hub (download), none, or a file")
)
@click.option("--epochs", type=click.IntRange(min=1), help=_help("epochs", "Epochs"))
@click.option("--steps", type=click.IntRange(min=1), help=_help("steps", "Batches per epoch"))
@click.option(
    "--batch-size", "-b", type=click.IntRange(min=1), help=_help("batch_size", "Patches or crops per batch")
)
@click.option("--lr", type=float, help=_help("lr", "Peak learning rate"))
@click.option("--dice", type=click.FloatRange(min=0), help=_help("dice", "Decoders: Dice loss weight"))
@click.option(
    "--jitter",
    type=click.FloatRange(min=0, max=1, max_open=True),
    help=_help(
        "jitter",
        "Backbones and decoders: scale each crop's brightness, contrast and saturation by up to this",
    ),
)
@click.option("--balance", is_flag=True, help="Draw every class equally often.")
@click.option("--no-augment", is_flag=True, help="No rotations or mirror images of patches.")
@click.option(
    "--no-calibrate", is_flag=True, help="No temperature fitted on the validation pixels after training."
)
@click.option("--ignore", help="Label value or colour to leave out (e.g. 0 or '#000000').")
@click.option(
    "--roi", help=f"Validation map region x0,y0,x1,y1 (default: the first {VALID_ROI}x{VALID_ROI} pixels)."
)
@click.option(
    "--stages",
    help="Backbones and decoders: finetune stages head|topN|all:EPOCHS:LR (default: "
    + ", ".join(f"{kind} top{n}:EPOCHS:LR" for kind, n in TRAINED_BLOCKS.items())
    + ").",
)
@click.option(
    "--budget",
    type=click.FloatRange(min=0, min_open=True),
    help="Minutes of training: the epochs (and the lr schedule) fitted to them on this machine, so a GPU "
    "trains more in the same time (default: --epochs; decoders' 8 epochs take about 40 minutes on 2 CPU "
    "cores for 62 training images of the aerial tiles; with --unlabelled 5 epochs, about 45).",
)
@click.option(
    "--budget-clock",
    type=click.Choice(("wall", "cpu")),
    help="What --budget counts: wall time, or CPU time over the threads, as on an otherwise idle machine "
    "(benchmarks on a shared one) (default: wall).",
)
@click.option(
    "--unlabelled",
    multiple=True,
    help="Decoders: images of the area to map, without labels (files, folders, globs; repeatable), learned "
    "from by confident pseudo-labels. Their labels, if any, are never read.",
)
@click.option(
    "--semi", type=click.Choice(SEMI_METHODS), help=_help("semi", "How --unlabelled images are learned from")
)
@click.option(
    "--pseudo-share",
    type=click.FloatRange(0, 1, min_open=True),
    help=_help(
        "pseudo_share", "The most confident share of each class's predicted pixels gets pseudo-labels"
    ),
)
@click.option(
    "--unlabelled-weight",
    type=click.FloatRange(min=0, min_open=True),
    help=_help("unlabelled_weight", "Weight of the unlabelled loss"),
)
@click.option(
    "--unlabelled-batch",
    type=click.IntRange(min=1),
    help="Unlabelled crops per step (default: half the batch size).",
)
@click.option("--monitor", type=click.Choice(MONITORS), help=_help("monitor", "Keep the epoch best by this"))
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Run folder (default: new under runs/).")
@click.option("--seed", type=int, default=0, show_default=True)
@track_option
@click.pass_context
def map_train(ctx: click.Context, tiles, train_refs, valid_ref, out, seed, track, **_options) -> None:
    """Train a patch classifier on the tiles of TILES (3band/, theme/, key-theme.txt).

    Or on images and labels as they come: --images DIR with --labels DIR (paired by name) or
    --vector FILE --attribute NAME, or --pairs CSV; --key FILE names the classes.
    """
    from imagefit.maps.training.map_train import train_map

    options = given_map_options(ctx)
    if "unlabelled" in options:
        options["unlabelled"] = tuple(options["unlabelled"]) or None
    valid = _refs(valid_ref) or None
    result = train_map(
        tiles, _refs(train_refs), valid, out=out, seed=seed, track=track_value(track), **options
    )
    m = result.metrics
    v, vm = m["valid_patches"], m["valid_map"]
    click.echo(f"valid positions: accuracy {v['accuracy']:.4f}  loss {v['loss']:.4f}  ({v['n']} patches)")
    if v.get("miou") is not None:
        click.echo(f"valid {', '.join(m['valid_refs'])} (their crops pooled): mIoU {v['miou']:.4f}")
    click.echo(f"valid map {vm['ref']}: pixel accuracy {vm['pixel_accuracy']:.4f}  mIoU {vm['miou']:.4f}")
    if "trust" in m:
        t = m["trust"]
        click.echo(
            f"calibration: temperature {t['temperature']:.3f}, "
            f"ECE {t['ece_uncalibrated']:.4f} -> {t['ece']:.4f} ({t['pixels']} validation pixels)"
        )
    click.echo(f"run folder: {result.run_dir}  (next: imagefit map {result.run_dir} TILE)")


@click.command("map")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), help="GeoTIFF of a single TILE (default: TILE-map.tif)."
)
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path),
    help="Folder for many tiles: TILE-map.tif each, tiles.csv, areas.csv, metrics.json, mosaic.vrt.",
)
@click.option("--png", is_flag=True, help="Also write a coloured PNG with a legend beside each map.")
@click.option(
    "--truth", type=click.Path(path_type=Path), help="Label raster, or a folder of them named like the tiles."
)
@click.option("--ignore", default=None, help="Label value or colour to leave out (e.g. 0 or '#000000').")
@click.option("--polygons", type=click.Path(path_type=Path), help="GeoPackage of the maps as polygons.")
@click.option(
    "--simplify", type=click.FloatRange(min=0), default=0.0, help="Polygon simplification in map units."
)
@click.option("--naive", is_flag=True, help="Classify patch by patch (the slow reference).")
@click.option("--roi", default=None, help="Map only the region x0,y0,x1,y1 (a single TILE).")
@click.option(
    "--window", type=click.IntRange(min=16), default=DEFAULT_WINDOW, show_default=True, help="Window side."
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="auto",
    show_default=True,
    help="auto: on a GPU, PyTorch there under AMP (bf16 or fp16) where its classes agree with fp32's; on "
    "a CPU, the fastest engine whose classes agree with PyTorch's, measured and remembered. torch: PyTorch "
    "fp32 (on the GPU if there is one); onnx, openvino, openvino-bf16: that CPU engine.",
)
@click.option(
    "--tta", is_flag=True, help="Decoders: average each window over its 8 rotations and mirrors (8x slower)."
)
@click.option(
    "--min-confidence",
    type=float,
    default=None,
    help="Leave pixels whose calibrated top class probability is below this (0-1) as no data: unsure.",
)
def map_command(run_dir, inputs, out, out_dir, png, truth, ignore, polygons, simplify, naive, roi, window,
                engine, tta, min_confidence) -> None:  # fmt: skip
    """Dense theme maps of INPUT tiles (files, folders, globs) with the patch classifier in RUN."""
    if out_dir is None and (len(inputs) > 1 or _many(inputs[0])):
        raise click.UsageError("several tiles (files, a folder or a glob pattern) need --out-dir DIR")
    if out_dir is not None and (out is not None or roi):
        raise click.UsageError("--out and --roi map a single TILE: leave out --out-dir")
    options = dict(truth=truth, ignore=_ignore(ignore), naive=naive, engine=engine, window=window, png=png)
    options.update(polygons=polygons, simplify=simplify, tta=tta, min_confidence=min_confidence)
    shown = logging.getLogger("imagefit").isEnabledFor(logging.INFO)
    if out_dir is None:
        from imagefit.maps.mapping.tile import map_tile

        _echo_tile(map_tile(run_dir, inputs[0], out, roi=_roi(roi), progress=shown, **options))
    else:
        from imagefit.maps.mapping.many_tiles import map_tiles

        _echo_tiles(map_tiles(run_dir, list(inputs), out_dir, progress=shown, **options))


def _many(item: str) -> bool:
    import glob

    return Path(item).is_dir() or (not Path(item).exists() and glob.has_magic(item))


def _echo_metrics(m: dict, what: str) -> None:
    scores = f"pixel accuracy {m['pixel_accuracy']:.4f}  mIoU {m['miou']:.4f}"
    click.echo(f"{what}{scores}  ({m['pixels']} pixels)")
    for name, iou in m["iou"].items():
        click.echo(f"  {name}: IoU {'-' if iou is None else f'{iou:.4f}'}")


def _echo_areas(areas) -> None:
    if areas.unsure is not None:
        shown = sum(r["share"] for r in areas.rows() if r["class"] == "unsure")
        click.echo(f"unsure (below --min-confidence): {areas.unsure_pixels} pixels ({shown:.1%})")
    if areas.hectares is None:
        click.echo(f"areas in pixels, not hectares: {areas.why}")
        return
    click.echo("areas: " + ", ".join(f"{r['class']} {r['hectares']:.2f} ha" for r in areas.rows()))


def _echo_tile(result) -> None:
    tm = result.streamed
    rate = tm.region.height * tm.region.width / max(tm.seconds, 1e-9)
    click.echo(
        f"mapped {tm.region.width}x{tm.region.height} pixels in {tm.seconds:.1f} s ({rate:,.0f} pixels/s)"
    )
    if result.metrics:
        _echo_metrics(result.metrics, "")
    _echo_areas(result.areas)
    for path in result.files:
        click.echo(f"wrote {path}")


def _echo_tiles(result) -> None:
    if result is None:  # a worker rank under torchrun: rank 0 reports
        return
    if result.skipped:
        click.echo(f"kept {result.skipped} tiles an earlier run had mapped with these settings")
    pixels = sum(r.width * r.height for r in result.tiles)
    seconds = sum(r.seconds for r in result.tiles)
    click.echo(f"mapped {len(result.tiles)} tiles ({pixels:,} pixels) in {seconds:.1f} s")
    if result.metrics:
        _echo_metrics(result.metrics, f"pooled over {result.metrics['tiles']} tiles with labels: ")
    _echo_areas(result.areas)
    if result.mosaic is None:
        click.echo(f"no mosaic.vrt: {result.no_mosaic}")
    click.echo(f"wrote {len(result.files)} files of the tiles in {result.tiles[0].map.parent}")
    for path in result.summary:
        click.echo(f"wrote {path}")
