"""A calibrated map run's confidence on the shared aerial tiles: how sure it is where right and wrong.

    python -m bench.map_confidence [--train T1P01,...] [--epochs 2] [--steps 100] [--threads 2]
        [--test T6P01] [--min-confidence 0.5,0.8]

Trains the seed's `larger_model` from scratch, briefly (the smallest, fastest map run), validated
on T3P01; map-train fits its temperature on the labelled pixels of T3P01's ROI. Then maps the
whole validation tile T3P01 and a held-out tile (T6P01 by default; it took no part in the
temperature) and prints, on their labelled pixels (label 0, unlabelled, ignored): the mean of the
confidence raster (round(255 * calibrated top probability), shown as a probability) where the map
is right and where it is wrong, its mean against the accuracy, and for each --min-confidence the
share of pixels left unsure and the accuracy of those kept; then the same means from a copy of the
run without its temperature (as runs mapped before calibration), side by side.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench._common import TILES, map_workspace

VALID = "T3P01"
TRAIN = [f"T1P0{p}" for p in range(1, 10)]  # tile 1: enough for a brief run, quick to read


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default=",".join(TRAIN), help="training refs, comma-separated")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--test", default="T6P01", help="held-out tiles mapped too, comma-separated")
    parser.add_argument("--min-confidence", default="0.5,0.8", help="thresholds to report, comma-separated")
    return parser.parse_args()


def judge(run_dir: Path, ref: str, out: Path, thresholds: list[float], label: str = "") -> None:
    """Map tile `ref` with the run; print its confidence where right and wrong, and per threshold."""
    import rasterio

    from imagefit.maps.inputs.key import ThemeKey
    from imagefit.maps.inputs.labels import read_labels
    from imagefit.maps.mapping.streaming import picture_index
    from imagefit.maps.mapping.tile import load_map_run, map_tile

    started = time.perf_counter()
    truth = TILES / "theme" / f"{ref}-theme.png"
    result = map_tile(run_dir, TILES / "3band" / f"{ref}.jpg", out / f"{ref}-map.tif", truth=truth, ignore=0)
    key: ThemeKey = load_map_run(run_dir).key.with_ignore(0)
    labels = read_labels(truth, key)
    with rasterio.open(result.confidence) as ds:
        p = ds.read(1).astype(np.float64) / 255
    index = picture_index(result.files[0], key, max_side=1 << 20)  # the whole map
    scored = (labels >= 0) & (index >= 0)
    right = scored & (index == labels)
    wrong = scored & ~right
    print(
        f"{ref}{label}: pixel accuracy {right.sum() / scored.sum():.4f} on {scored.sum():,} labelled pixels "
        f"(mapped in {time.perf_counter() - started:.0f} s)\n"
        f"    mean confidence: right {p[right].mean():.4f}  wrong {p[wrong].mean():.4f}  "
        f"all {p[scored].mean():.4f}",
        flush=True,
    )
    for t in thresholds:
        kept = scored & (p >= t)
        share = 1 - kept.sum() / scored.sum()
        accuracy = (right & kept).sum() / max(kept.sum(), 1)
        print(f"    --min-confidence {t:g}: {share:.1%} unsure, accuracy of the rest {accuracy:.4f}")


def main() -> None:
    args = _arguments()
    tmp = map_workspace(args.threads, "imagefit-bench-confidence-")
    from imagefit.maps.training.map_train import train_map

    started = time.perf_counter()
    run = train_map(
        TILES, args.train.split(","), VALID, out=tmp / "run", ignore=0, balance=True, progress=False,
        model="larger_model", epochs=args.epochs, steps=args.steps, batch_size=64,
    )  # fmt: skip
    trust = run.metrics["trust"]
    print(
        f"larger_model, {args.epochs} epochs of {args.steps} steps, trained in "
        f"{time.perf_counter() - started:.0f} s; run {run.run_dir}\n"
        f"temperature {trust['temperature']:.3f} on {trust['pixels']:,} pixels of {VALID}'s ROI: "
        f"ECE {trust['ece_uncalibrated']:.4f} -> {trust['ece']:.4f}",
        flush=True,
    )
    thresholds = [float(t) for t in args.min_confidence.split(",") if t]
    plain = uncalibrated(run.run_dir, tmp / "run-uncalibrated")
    for ref in [VALID, *(r for r in args.test.split(",") if r)]:
        judge(run.run_dir, ref, tmp, thresholds)
        judge(plain, ref, tmp / "uncalibrated", thresholds, " (no temperature)")


def uncalibrated(run_dir: Path, copy: Path) -> Path:
    """A copy of the run folder whose config has no calibration, as runs were saved before it."""
    import json
    import shutil

    shutil.copytree(run_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["calibration"] = {}
    (copy / "config.json").write_text(json.dumps(config))
    (copy.parent / "uncalibrated").mkdir()
    return copy


if __name__ == "__main__":
    main()
