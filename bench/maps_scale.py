"""Maps at scale: one U-Net run mapping synthetic GeoTIFFs of growing size, each in a fresh process.

    python -m bench.maps_scale [--sizes 4000,16000,32000] [--run RUN] [--old-code DIR]
                               [--old-sizes 4000,16000] [--cold-sizes 4000] [--work DIR] [--threads 2]
                               [--ranks-tiles N] [--repeat N]

The rasters are real imagery: the aerial tile T8P01 repeated with alternate copies mirrored, written
strip by strip as a tiled, JPEG-compressed, georeferenced GeoTIFF (EPSG:32640, 0.5 m) like an
orthophoto, kept in the work folder for the next run. Each size is mapped by `imagefit map RUN
RASTER -o MAP` in a child process: wall time, Mpx/s and its peak resident memory (the child's own
VmHWM, in MiB and GB), with the machine's load beside; after a first map that measured the
engines (later maps of a run find its graph and engine cached and do not load PyTorch), and for
the sizes of `--cold-sizes` again from an empty cache, as the first map of a run on a machine.
With `--repeat N` each size is mapped N times: its least time (the run the machine's other work
disturbed least) and its highest peak are kept.
`--old-code DIR` maps the sizes of `--old-sizes` with another checkout too (today's code before
streaming, say `git worktree add DIR dfed7cf`), same run. Without `--run`, a small U-Net is trained
first (map-train, 1 epoch of 8 steps of 4 crops: the same run at every size, its quality beside the
point). `--ranks-tiles N` maps N aerial tiles in one process and
under `torchrun --nproc-per-node 2` and compares their wall time and outputs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import TILES, offline_env

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[:3].__str__()


def mosaic(side: int, out: Path, strip: int = 512) -> Path:
    """A side x side RGB GeoTIFF of T8P01 repeated, alternate copies mirrored, written strip by strip."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from imagefit.maps.inputs.rasters import read_image

    if out.exists():
        return out
    base, _ = read_image(TILES / "3band" / "T8P01.jpg")
    row = np.concatenate([base, base[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    cols = np.arange(side) % block.shape[1]
    profile = {"driver": "GTiff", "height": side, "width": side, "count": 3, "dtype": "uint8", "tiled": True}
    profile.update(compress="jpeg", photometric="ycbcr", jpeg_quality=90, BIGTIFF="IF_SAFER")
    profile.update(crs="EPSG:32640", transform=from_origin(300000.0, 2800000.0, 0.5, 0.5))
    tmp = out.with_name(f".{out.name}.tmp")
    with rasterio.open(tmp, "w", **profile) as ds:
        for top in range(0, side, strip):
            rows = np.arange(top, min(top + strip, side)) % block.shape[0]
            pixels = block[rows][:, cols]
            ds.write(pixels.transpose(2, 0, 1), window=Window(0, top, side, len(rows)))
    tmp.rename(out)
    return out


def train_unet(work: Path, env: dict) -> Path:
    """A small U-Net map run (8 steps of 4 crops of the aerial tiles), trained once into WORK/unet."""
    run = work / "unet"
    if (run / "model.safetensors").exists():
        return run
    cmd = [sys.executable, "-m", "imagefit", "-q", "map-train", str(TILES), "--model", "unet"]
    cmd += ["--epochs", "1", "--steps", "8", "--batch-size", "4", "--ignore", "0", "--out", str(run)]
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)
    return run


# runs `python -m imagefit ...` and writes its own peak resident memory (VmHWM, KiB) where told at exit
PEAK = """
import atexit, os, runpy, sys

def peak():
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    with open(os.environ["IMAGEFIT_BENCH_PEAK"], "w") as out:
        out.write(str(kib))

atexit.register(peak)
sys.argv = ["imagefit", *sys.argv[1:]]
runpy.run_module("imagefit", run_name="__main__", alter_sys=True)
"""


def run_child(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit status of a child process.

    For `python -m imagefit ...` the peak is the child's own (its VmHWM, written at its exit): a
    child's ru_maxrss on Linux starts from the resident memory of the parent that forked it, here a
    floor of about 750 MiB (this process had loaded the run) that hid lighter children's peaks."""
    started = time.perf_counter()
    peak_file = Path(tempfile.mkstemp(prefix="imagefit-peak-")[1])
    if cmd[1:3] == ["-m", "imagefit"]:
        cmd, env = [cmd[0], "-c", PEAK, *cmd[3:]], {**env, "IMAGEFIT_BENCH_PEAK": str(peak_file)}
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()[-1500:]
    proc.stderr.close()
    if proc.returncode:
        print(f"    exit {proc.returncode}: {err.strip()}", flush=True)
    own = peak_file.read_text()
    peak_file.unlink()
    return wall, (int(own) if own else usage.ru_maxrss) / 1024, proc.returncode


def map_sizes(
    run: Path, sizes: list[int], work: Path, code: Path, label: str, threads: int, cold: bool = False,
    repeat: int = 1,
) -> dict:  # fmt: skip
    """Map a mosaic of each size with the checkout at `code`, each in a fresh process: after a
    warm-up map that measures the engines and caches the graph, or with `cold` each from an
    empty cache (the first map of a run on a machine: engines measured, graph exported, PyTorch loaded)."""
    env = {**offline_env(), "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads)}
    env["IMAGEFIT_CACHE"] = str(work / "cache")
    if not cold:
        warm = [
            sys.executable,
            "-m",
            "imagefit",
            "-q",
            "map",
            str(run),
            str(mosaic(1100, work / "mosaic1100.tif")),
        ]
        wall, rss, _ = run_child([*warm, "-o", str(work / f"{label}-warm-map.tif")], env, work)
        print(
            f"{label:>6} warm-up map, 1100 px (the engines measured unless the cache has a choice): "
            f"{wall:.1f} s, {_rss(rss)}",
            flush=True,
        )
    results = {}
    for side, k in ((side, k) for side in sizes for k in range(repeat)):
        raster = mosaic(side, work / f"mosaic{side}.tif")
        out = work / f"{label}-{side}-map.tif"
        if cold:
            cache = work / f"cache-cold-{side}"
            subprocess.run(["rm", "-rf", str(cache)], check=True)
            env["IMAGEFIT_CACHE"] = str(cache)
        before = load()
        cmd = [sys.executable, "-m", "imagefit", "-q", "map", str(run), str(raster), "-o", str(out)]
        wall, rss, status = run_child(cmd, env, work)
        mpx = side * side / 1e6
        if side in results:  # another try: the least time, the highest peak, any failure
            earlier = results[side]
            results[side] = (min(wall, earlier[0]), max(rss, earlier[1]), status or earlier[2])
        else:
            results[side] = (wall, rss, status)
        print(
            f"{label:>6} {side:>6} px ({mpx:,.0f} Mpx){f' #{k + 1}' if repeat > 1 else ''}: "
            f"{wall:8.1f} s  {mpx / wall:6.3f} Mpx/s  "
            f"{_rss(rss)}  {'ok' if status == 0 else 'FAILED'}  load {before} -> {load()}",
            flush=True,
        )
    return results


def _rss(mib: float) -> str:
    """A peak resident size given in MiB, in MiB and decimal GB."""
    return f"peak RSS {mib:6.0f} MiB ({mib * 2**20 / 1e9:.2f} GB)"


def summary(results: dict, times: bool = True) -> None:
    """Peak RSS growth from the smallest to the largest size, and (with `times`) seconds per Mpx of
    each size."""
    done = {s: r for s, r in results.items() if r[2] == 0}
    if len(done) < 2:
        return
    small, large = min(done), max(done)
    growth = done[large][1] / done[small][1] - 1
    highest = max(r[1] for r in done.values()) * 2**20 / 1e9
    per_mpx = {s: r[0] / (s * s / 1e6) for s, r in done.items()}
    spread = max(per_mpx.values()) / min(per_mpx.values()) - 1
    shown = ", ".join(f"{s}: {v:.2f} s/Mpx" for s, v in per_mpx.items())
    print(
        f"peak RSS {small} -> {large} px: {growth:+.1%} (target < +20 %); "
        f"highest {highest:.2f} GB (target < 1.5)"
    )
    if not times:
        return
    print(f"seconds per Mpx: {shown}; spread {spread:.1%} (target: linear within 15 %)", flush=True)
    if len(done) >= 3:  # a fixed start plus time in proportion to pixels, and how far each size is off
        # fitted on relative residuals, as the target is relative: in seconds, a few seconds' noise at
        # the largest size (1 %) would set the start, and with it the smallest size's residual
        mpx = np.array([s * s / 1e6 for s in done])
        wall = np.array([r[0] for r in done.values()])
        slope, start = np.polyfit(mpx, wall, 1, w=1 / wall)
        off = ", ".join(
            f"{s}: {w / (start + slope * m) - 1:+.1%}" for s, m, w in zip(done, mpx, wall, strict=True)
        )
        print(
            f"least-squares fit (relative residuals): {start:.1f} s + {slope:.3f} s per Mpx; "
            f"each size off the fit by {off} (target: within 15 %)",
            flush=True,
        )


def ranks(run: Path, n: int, work: Path, threads: int) -> None:
    """N aerial tiles mapped by one process and by two torchrun ranks: wall times, outputs compared."""
    import filecmp

    tiles = work / "tiles"
    tiles.mkdir(exist_ok=True)
    for path in sorted((TILES / "3band").glob("*.jpg"))[:n]:
        (tiles / path.name).unlink(missing_ok=True)
        (tiles / path.name).symlink_to(path)
    env = {**offline_env(), "PYTHONPATH": str(ROOT)}
    args = ["-m", "imagefit", "-q", "map", str(run), str(tiles), "--window", "1024"]
    one = run_child(
        [sys.executable, *args, "--out-dir", str(work / "one")],
        {**env, "OMP_NUM_THREADS": str(threads)},
        work,
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    two = run_child(
        [*torchrun, *args, "--out-dir", str(work / "two")],
        {**env, "OMP_NUM_THREADS": str(max(threads // 2, 1))},
        work,
    )
    maps = sorted(p.name for p in (work / "one").glob("*.tif"))
    same = all(filecmp.cmp(work / "one" / m, work / "two" / m, shallow=False) for m in maps)
    pixels = sum(_pixels(tiles / p.name) for p in tiles.iterdir()) / 1e6
    print(
        f"{n} aerial tiles ({pixels:.1f} Mpx): one process {one[0]:.1f} s, torchrun 2 ranks {two[0]:.1f} s "
        f"({threads} cores in all each); {len(maps)} GeoTIFFs byte-identical: {same}; load {load()}",
        flush=True,
    )


def _pixels(path: Path) -> int:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.width * ds.height


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,16000,32000", help="raster sides in pixels, comma-separated")
    parser.add_argument("--run", type=Path, help="a U-Net map run (default: train a small one)")
    parser.add_argument(
        "--old-code", type=Path, help="another checkout to compare (e.g. main before streaming)"
    )
    parser.add_argument("--old-sizes", default="4000,16000", help="sizes the other checkout maps")
    parser.add_argument(
        "--cold-sizes",
        default="4000",
        help="sizes mapped again from an empty engine cache (first map of a run)",
    )
    parser.add_argument("--work", type=Path, help="work folder, kept (default: a new temporary one)")
    parser.add_argument("--threads", type=int, default=2, help="threads of each mapping process")
    parser.add_argument("--ranks-tiles", type=int, default=0, help="aerial tiles for the torchrun part")
    parser.add_argument("--repeat", type=int, default=1, help="maps of each size: least time, highest peak")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    work = args.work or Path(tempfile.mkdtemp(prefix="imagefit-maps-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**offline_env(), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    run = args.run or train_unet(work, env)
    count = "import sys; from imagefit.maps.mapping.tile import load_map_run as l; "
    count += "print(sum(p.numel() for p in l(sys.argv[1]).model.parameters()))"
    params = int(subprocess.run([sys.executable, "-c", count, str(run)], env=env, capture_output=True,
                                text=True, check=True).stdout.split()[-1])  # fmt: skip
    print(f"run {run}: {params:,} parameters; work folder {work}; {args.threads} threads", flush=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    summary(map_sizes(run, sizes, work, ROOT, "new", args.threads, repeat=args.repeat))
    cold = [int(s) for s in args.cold_sizes.split(",") if s]
    if cold:
        summary(map_sizes(run, cold, work, ROOT, "cold", args.threads, cold=True), times=False)
    if args.old_code:
        old = [s for s in (int(s) for s in args.old_sizes.split(",") if s) if s in sizes]
        map_sizes(run, old, work, args.old_code.resolve(), "old", args.threads)
    if args.ranks_tiles:
        ranks(run, args.ranks_tiles, work, args.threads)


if __name__ == "__main__":
    main()
