"""Theme maps of aerial tiles: dense vs naive speed, a 4000x4000 tile, and map quality on a held-out tile.

    python -m bench.maps [--skip-quality] [--skip-speed] [--threads 2] [--only scratch|pretrained]
        [--epochs 6] [--epochs-pretrained 8] [--scratch-run RUN] [--pretrained-run RUN]

Speed: the seeds' `larger_model` (trained in the quality part, or untrained with --skip-quality)
maps a 2000x2000 region densely (ONNX Runtime and PyTorch engines) and a sampled 200x200 region
patch by patch (the naive reference); pixels/s of each and the ratio. Then a 4000x4000 tile is
mapped densely end to end (windows read from the file, stitched, GeoTIFF written). No real tile
is that large (at most 2149x1479), so both mosaics are made by mirroring tile T8P01's real imagery.

Quality: `larger_model` from scratch (28-pixel patches) and the bundled pretrained
EfficientNet-Lite0 (32-pixel patches, trained densely on 192-pixel crops with FCN-8s skips) are
trained on seven real tiles (validated on T3P01) and map six held-out tiles, one per tile group
(T4P05 first, the headline); pixel accuracy and mIoU against their labels (value 0, unlabelled,
ignored), per tile and pooled over all held-out pixels. `--scratch-run`/`--pretrained-run` map
with a run folder trained earlier instead of training again.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import DATA, offline_env

TILES = DATA / "aerial-tiles"
TRAIN = ["T1P01", "T2P01", "T3P03", "T4P01", "T5P04", "T6P01", "T8P01"]
VALID = "T3P01"
HELD_OUT = ["T4P05", "T1P05", "T2P05", "T5P05", "T6P05", "T8P05"]  # the first is the headline
HALF = (0.5, 0.5, 0.5)


def mosaic(side: int, out: Path) -> Path:
    """A side x side RGB GeoTIFF of real imagery: T8P01 repeated with alternate copies mirrored."""
    import rasterio

    from imagefit.maps.rasters import read_rgb

    base = read_rgb(TILES / "3band" / "T8P01.jpg")
    row = np.concatenate([base, base[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = (side // block.shape[0] + 1, side // block.shape[1] + 1, 1)
    pixels = np.tile(block, reps)[:side, :side].transpose(2, 0, 1)
    profile = {"driver": "GTiff", "height": side, "width": side, "count": 3, "dtype": "uint8", "tiled": True}
    with rasterio.open(out, "w", **profile) as ds:
        ds.write(pixels)
    return out


def load() -> str:
    return (
        subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average: ")[-1]
    )


def speed(model, tmp: Path) -> None:
    from imagefit.maps.engines import NaiveEngine, OnnxDenseEngine, TorchDenseEngine
    from imagefit.maps.key import ThemeKey
    from imagefit.maps.output import write_geotiff
    from imagefit.maps.predict import map_region

    print(f"load average before speed: {load()}")
    region = mosaic(2000, tmp / "mosaic2000.tif")
    rates = {}
    for name, engine in (("onnx", OnnxDenseEngine(model, 28)), ("torch", TorchDenseEngine(model, 28))):
        m = map_region(engine, region, 28, HALF, HALF)
        rates[name] = m.mapped / m.seconds
        print(
            f"dense ({name}) 2000x2000: {m.seconds:.1f} s, {rates[name]:,.0f} pixels/s, {m.windows} windows"
        )
    m = map_region(NaiveEngine(model, 28, 2048), region, 28, HALF, HALF, roi=((900, 900), (1100, 1100)))
    naive = m.mapped / m.seconds  # pixels that got a class
    best = max(rates.values())
    print(f"naive 200x200 sample: {m.seconds:.1f} s, {naive:,.0f} pixels/s")
    print(f"dense / naive: {best / naive:.0f}x (target >= 100x)")
    big = mosaic(4000, tmp / "mosaic4000.tif")
    key = ThemeKey(tuple(f"c{k}" for k in range(6)), tuple(range(1, 7)))
    started = time.perf_counter()
    m = map_region(OnnxDenseEngine(model, 28), big, 28, HALF, HALF)
    write_geotiff(m, key, tmp / "mosaic4000-map.tif")
    seconds = time.perf_counter() - started
    print(f"4000x4000 tile, dense end to end (read, map, stitch, GeoTIFF): {seconds:.1f} s (target < 60 s)")
    print(f"load average after speed: {load()}")


def quality(name: str, tmp: Path, run_dir: Path | None = None, **options) -> tuple[object, dict]:
    """Train (or reuse `run_dir`), map every held-out tile; per-tile and pooled pixel accuracy and mIoU."""
    from imagefit.maps.mapping import load_map_run, map_tile
    from imagefit.maps.train import train_map

    started = time.perf_counter()
    if run_dir is None:
        run = train_map(
            TILES, TRAIN, VALID, out=tmp / name, ignore=0, balance=True, progress=False, **options
        )
        run_dir, model = run.run_dir, run.classifier.model
    else:
        model = load_map_run(run_dir).model
    trained = time.perf_counter() - started
    confusion, first = 0, None
    for ref in HELD_OUT:
        tile, truth = TILES / "3band" / f"{ref}.jpg", TILES / "theme" / f"{ref}-theme.png"
        m = map_tile(run_dir, tile, tmp / f"{name}-{ref}.tif", truth=truth, ignore=0).metrics
        confusion = confusion + np.array(m["confusion"])
        first = first or m
        print(
            f"  {name} {ref}: pixel accuracy {m['pixel_accuracy']:.4f}  mIoU {m['miou']:.4f}"
            f"  (map {m['seconds']:.1f} s)",
            flush=True,
        )
    pooled = _scores(confusion)
    ious = "  ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in first["iou"].items())
    print(
        f"{options.get('model', name)}: held-out {HELD_OUT[0]} pixel accuracy {first['pixel_accuracy']:.4f}  "
        f"mIoU {first['miou']:.4f}  (train {trained:.0f} s)\n    {HELD_OUT[0]} IoU: {ious}\n"
        f"    all {len(HELD_OUT)} held-out tiles pooled: pixel accuracy {pooled['pixel_accuracy']:.4f}  "
        f"mIoU {pooled['miou']:.4f}",
        flush=True,
    )
    return model, {"first": first, "pooled": pooled}


def _scores(confusion: np.ndarray) -> dict:
    """Pixel accuracy and mean IoU (over classes present in truth or prediction) of a confusion matrix."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return {
        "pixel_accuracy": tp.sum() / confusion.sum(),
        "miou": float((tp[present] / union[present]).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--epochs-pretrained", type=int, default=8)
    parser.add_argument("--only", choices=["scratch", "pretrained"], default=None)
    parser.add_argument("--scratch-run", type=Path, default=None, help="map with this run, not a new one")
    parser.add_argument("--pretrained-run", type=Path, default=None, help="map with this run, not a new one")
    args = parser.parse_args()
    os.environ.update(offline_env())
    import torch

    torch.set_num_threads(args.threads)
    if not TILES.is_dir():
        raise SystemExit(f"real data not found at {TILES}")
    tmp = Path(tempfile.mkdtemp(prefix="imagefit-bench-maps-"))
    print(f"torch threads {torch.get_num_threads()}; work folder {tmp}")
    model = None
    if not args.skip_quality:
        scratch = {"model": "larger_model", "epochs": args.epochs, "steps": 200, "batch_size": 64}
        scores = {}
        if args.only != "pretrained":
            model, scores["larger_model"] = quality("scratch", tmp, args.scratch_run, **scratch)
        pretrained = {"model": "efficientnet_lite0", "epochs": args.epochs_pretrained, "steps": 150}
        if args.only != "scratch":
            _, scores["efficientnet_lite0"] = quality("pretrained", tmp, args.pretrained_run, **pretrained)
        if len(scores) == 2:
            for key, what in (("first", HELD_OUT[0]), ("pooled", f"all {len(HELD_OUT)} held-out tiles")):
                a, b = scores["efficientnet_lite0"][key], scores["larger_model"][key]
                gain, miou = a["pixel_accuracy"] - b["pixel_accuracy"], a["miou"] - b["miou"]
                print(f"pretrained - scratch on {what}: pixel accuracy {gain:+.4f}  mIoU {miou:+.4f}")
    if not args.skip_speed:
        if model is None:
            from imagefit.models.small_cnn import SmallCNN

            model = SmallCNN("larger_model", 3, 6, 28).eval()
        speed(model, tmp)


if __name__ == "__main__":
    main()
