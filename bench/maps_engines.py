"""Map engines side by side: PyTorch eager vs the engine `--engine auto` chooses, per model, in one run.

    python -m bench.maps_engines --unet RUN [--larger RUN] [--side 4000] [--threads 2] [--work DIR]

For each map run: Mpx/s mapping a side x side raster of real imagery (bench.maps_scale's mosaic of
T8P01; window reading and blending or stitching included, no file written) with PyTorch fp32 and
with the engine `auto` picks (decoders: measured among PyTorch, ONNX Runtime, OpenVINO fp32 and
bf16 where the CPU computes it natively; small CNNs: ONNX Runtime); beside it, on the run's
validation tile, the share of pixels whose class the chosen engine gives as PyTorch does (target
>= 99.5 %) and the pixel accuracy of both against the labels (target: a drop < 0.2 points).
Without `--larger`, a `larger_model` run is trained first (map-train, 2 epochs of 100 steps).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench._common import TILES, map_workspace, offline_env
from bench.maps_scale import load, mosaic

ROOT = Path(__file__).resolve().parents[1]


def train_larger(work: Path) -> Path:
    run = work / "larger_model"
    if not (run / "model.safetensors").exists():
        cmd = [sys.executable, "-m", "imagefit", "-q", "map-train", str(TILES), "--model", "larger_model"]
        cmd += ["--epochs", "2", "--steps", "100", "--ignore", "0", "--out", str(run)]
        subprocess.run(cmd, env={**offline_env(), "PYTHONPATH": str(ROOT)}, check=True, cwd=ROOT)
    return run


def rate(engine, raster: Path, run) -> float:
    """Mpx/s of mapping the whole raster (blocks computed, nothing written)."""
    from imagefit.maps.inputs.rasters import raster_info
    from imagefit.maps.mapping.region import map_blocks, region_of

    region = region_of(raster_info(raster), None, run.patch)
    started = time.perf_counter()
    for _ in map_blocks(engine, raster, region, run.patch, run.mean, run.std, bands=run.bands):
        pass
    return region.height * region.width / (time.perf_counter() - started) / 1e6


def validation(engine, run, ref: str) -> tuple[np.ndarray, np.ndarray]:
    """Class indices of the validation tile, and its labels (ignored pixels -1)."""
    from imagefit.maps.inputs.labels import read_labels
    from imagefit.maps.mapping.region import map_region

    tile, truth = TILES / "3band" / f"{ref}.jpg", TILES / "theme" / f"{ref}-theme.png"
    index = map_region(engine, tile, run.patch, run.mean, run.std, bands=run.bands).index
    return index, read_labels(truth, run.key.with_ignore(0))


def compare(name: str, run_dir: Path, raster: Path) -> None:
    from imagefit.maps.mapping.tile import load_map_run
    from imagefit.maps.mapping.window_engines import make_engine
    from imagefit.runs import read_config

    run = load_map_run(run_dir)
    ref = read_config(run_dir).options["map"]["valid"]
    params = sum(p.numel() for p in run.model.parameters())
    eager = make_engine(run.model, run.patch, engine="torch", temperature=run.temperature)
    chosen = make_engine(run.model, run.patch, temperature=run.temperature)
    ours, labels = validation(chosen, run, ref)  # a decoder's engine is chosen on its first window
    theirs, _ = validation(eager, run, ref)
    labelled = labels >= 0
    agree = float((ours == theirs).mean())
    acc = [float((m[labelled] == labels[labelled]).mean()) for m in (theirs, ours)]
    kind = (
        getattr(getattr(chosen, "engine", chosen), "name", "")
        or type(getattr(chosen, "engine", chosen)).__name__
    )
    before = load()
    speeds = [rate(eager, raster, run), rate(chosen, raster, run)]
    print(
        f"{name} ({params:,} parameters) on {raster.name}: PyTorch eager {speeds[0]:.3f} Mpx/s, "
        f"chosen ({kind}) {speeds[1]:.3f} Mpx/s: {speeds[1] / speeds[0]:.2f}x  | validation tile {ref}: "
        f"classes agree on {agree:.3%} of pixels, pixel accuracy {acc[0]:.4f} -> {acc[1]:.4f} "
        f"({(acc[1] - acc[0]) * 100:+.2f} pt)  load {before} -> {load()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unet", type=Path, required=True, help="a U-Net map run")
    parser.add_argument("--larger", type=Path, help="a larger_model map run (default: train one)")
    parser.add_argument("--side", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = map_workspace(args.threads, "imagefit-maps-engines-")  # offline, threads, data checked
    if args.work:
        work.rmdir()
        work = args.work
        work.mkdir(parents=True, exist_ok=True)
    raster = mosaic(args.side, work / f"mosaic{args.side}.tif")
    print(f"{args.threads} threads, work folder {work}, load {load()}", flush=True)
    compare("U-Net", args.unet, raster)
    compare("larger_model", args.larger or train_larger(work), raster)


if __name__ == "__main__":
    main()
