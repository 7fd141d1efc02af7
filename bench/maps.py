"""Theme maps of aerial tiles: the published models' tile-6 protocol, dense vs naive speed, 4000x4000 maps.

    python -m bench.maps [--models unet,fcn,larger_model] [--skip-quality] [--skip-speed]
        [--threads 2] [--run NAME=RUN ...] [--tta] [--epochs-decoder N --steps-decoder N ...]
        [--splits tile6,random0,...] [--seeds 0,1,...]
    python -m bench.maps --methods default,fixmatch [--protocol tile6|random] [--seeds 0,1]
        [--budget MINUTES] [--tta] [--json FILE [--resume]]

Quality (the protocol of the models published on this dataset): each model trains on every image of
tiles 1-5 and 8 but one (T3P01, held out for validation and the per-epoch map), then maps all 9
images of tile 6 (T6P01..T6P09), never seen in training. Printed per model: pooled pixel accuracy,
mIoU over the 6 classes and per-class IoU (label value 0, unlabelled, ignored), with the training
time (wall, and CPU seconds / threads: what the wall time is on an otherwise idle machine). The
models: the new U-Net decoder (segmentation_models_pytorch on the bundled Lite0 encoder), the
Lite0 FCN-8s path (32-pixel patches trained densely on 192-pixel crops) and the seed's
`larger_model` (28-pixel patches from scratch). `--run NAME=RUN` maps with a run trained earlier.
Published on this dataset, for comparison: a U-Net reaching 0.867 pixel accuracy on held-out
whole images; DeepLabV3+ ResNet50 0.871 accuracy and 0.617 mIoU on (leaky) random patches.
This protocol supersedes the earlier 7-tile / 6-held-out-tiles quality part.
`--splits randomN` also trains and scores the decoder on the published U-Net's protocol: 9 whole
images held out at random (seed N) from all 63 images, 1 for validation, the other 53 train.
`--seeds 0,1,...` trains the decoder once per seed and prints the mean and range of its scores
(one seed on one held-out scene is a noisy figure).

Methods (`--methods`, the decoder only, no speed part): today's default and the new ones side by
side in one run, on each split, for each seed, every run given the same `--budget` of training
minutes (`--budget-clock cpu`, the default: CPU minutes over the threads, what the wall time is on
an otherwise idle machine, so that runs on a shared machine get the same work; `wall` on a GPU):
`default` (today's: trained on the split's training images, validated on its one image, best epoch
by val_acc), `pooled` (several held-out images of several tiles chosen by map-train, pooled, best
epoch by their mIoU), `fixmatch` and `mean-teacher` (pooled, plus the split's test images as
`--unlabelled` input: their pixels, never their labels). Printed per seed and as the mean of the
seeds: pixel accuracy, mIoU(6), per-class IoU and training minutes; `--json FILE` writes them all,
each run as it finishes, with the code it measured. A comparison takes hours (8 runs of 60
minutes for one protocol), more than a working session: `--resume` keeps the runs FILE holds from
the same code (the git objects of imagefit/, bench/maps.py and bench/_common.py, committed:
uncommitted code measures nothing reproducible) with the same options, trains the others, and
prints all of them side by side, each with when it ran.
`--protocol tile6` is `--splits tile6`, `--protocol random` `--splits random0,random1`.
Targets (issue 28, mean of two seeds, at most 60 minutes of training each on 2 cores): tile 6 >=
0.87 pixel accuracy and >= 0.56 mIoU, random images >= 0.867 pixel accuracy. `bench/maps_gpu.sh`
runs the whole comparison on a GPU.

Speed: `larger_model` maps a 2000x2000 region densely (ONNX Runtime and PyTorch) and a sampled
200x200 region patch by patch (the naive reference); then a 4000x4000 tile is mapped end to end
(read, map, GeoTIFF) by `larger_model` and by the decoder (overlapping windows blended). No real
tile is that large (at most 2149x1479), so the mosaics mirror tile T8P01's real imagery.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench._common import TILES, map_workspace

VALID = "T3P01"
TRAIN = [f"T{t}P0{p}" for t in (1, 2, 3, 4, 5, 8) for p in range(1, 10) if f"T{t}P0{p}" != VALID]
TEST = [f"T6P0{p}" for p in range(1, 10)]


@dataclass
class Split:
    """Which images train, which one validates, which are mapped and scored."""

    name: str
    train: list[str]
    valid: str | list[str]
    test: list[str]


TILE6 = Split("tile 6", TRAIN, VALID, TEST)


def random_split(seed: int) -> Split:
    """The published U-Net's protocol: 9 whole images held out at random from all 63 (tiles 1-6 and
    8), one more for validation, the other 53 train, as many as in the tile-6 protocol."""
    refs = sorted([*TRAIN, VALID, *TEST])
    order = [str(r) for r in np.random.default_rng(seed).permutation(refs)]
    return Split(f"random split {seed}", sorted(order[10:]), order[9], sorted(order[:9]))


HALF = (0.5, 0.5, 0.5)
MODELS = {  # name -> map-train options (the decoder with map-train's decoder defaults)
    "unet": {"model": "unet"},
    "fcn": {"model": "efficientnet_lite0", "epochs": 8, "steps": 150},
    "larger_model": {"model": "larger_model", "epochs": 6, "steps": 200, "batch_size": 64},
}
PUBLISHED = "published: U-Net 0.867 accuracy (held-out images); DeepLabV3+ R50 0.871 acc, 0.617 mIoU"


def mosaic(side: int, out: Path) -> Path:
    """A side x side RGB GeoTIFF of real imagery: T8P01 repeated with alternate copies mirrored."""
    import rasterio

    from imagefit.maps.inputs.rasters import read_image

    base, _ = read_image(TILES / "3band" / "T8P01.jpg")
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


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def speed(models: dict, tmp: Path) -> None:
    """Dense vs naive pixels/s of larger_model; a 4000x4000 map end to end by every model given."""
    from imagefit.maps.mapping.region import map_region
    from imagefit.maps.mapping.window_engines import NaiveEngine, OnnxDenseEngine, TorchDenseEngine

    print(f"load average before speed: {load()}", flush=True)
    small = models["larger_model"]
    region = mosaic(2000, tmp / "mosaic2000.tif")
    rates = {}
    for name, engine in (("onnx", OnnxDenseEngine(small, 28)), ("torch", TorchDenseEngine(small, 28))):
        m = map_region(engine, region, 28, HALF, HALF)
        rates[name] = m.mapped / m.seconds
        print(
            f"dense ({name}) 2000x2000: {m.seconds:.1f} s, {rates[name]:,.0f} pixels/s, {m.windows} windows"
        )
    m = map_region(NaiveEngine(small, 28, 2048), region, 28, HALF, HALF, roi=((900, 900), (1100, 1100)))
    naive = m.mapped / m.seconds
    print(f"naive 200x200 sample: {m.seconds:.1f} s, {naive:,.0f} pixels/s")
    print(f"dense / naive: {max(rates.values()) / naive:.0f}x (target >= 100x)")
    big = mosaic(4000, tmp / "mosaic4000.tif")
    for name, model in models.items():
        seconds, windows = big_map(model, 1 if name == "unet" else 28, big, tmp / f"mosaic4000-{name}.tif")
        print(
            f"4000x4000 tile, {name}, end to end (read, map, {'blend' if name == 'unet' else 'stitch'}, "
            f"GeoTIFF): {seconds:.1f} s, {windows} windows (target < 60 s)",
            flush=True,
        )
    print(f"load average after speed: {load()}")


def big_map(model, patch: int, tile: Path, out: Path) -> tuple[float, int]:
    from imagefit.maps.inputs.key import ThemeKey
    from imagefit.maps.mapping.region import map_region
    from imagefit.maps.mapping.window_engines import make_engine
    from imagefit.maps.outputs.geotiff import write_geotiff

    key = ThemeKey(tuple(f"c{k}" for k in range(6)), tuple(range(1, 7)))
    started = time.perf_counter()
    m = map_region(make_engine(model, patch), tile, patch, HALF, HALF)
    write_geotiff(m, key, out)
    return time.perf_counter() - started, m.windows


def quality(
    name: str, tmp: Path, threads: int, run_dir: Path | None = None, tta_too: bool = False,
    split: Split = TILE6, **options,
) -> tuple[object, dict]:  # fmt: skip
    """Train (or reuse `run_dir`) on the split's training images (tiles 1-5 and 8), map its test
    images (the 9 of tile 6); pooled scores (with `tta_too`, a second time with the 8 symmetries of
    every window averaged)."""
    from imagefit.maps.mapping.tile import load_map_run, map_tile
    from imagefit.maps.training.map_train import train_map

    started, cpu = time.perf_counter(), cpu_seconds()
    if run_dir is None:
        run = train_map(
            TILES, split.train, split.valid, out=tmp / name, ignore=0, balance=True, progress=False, **options
        )
        run_dir, model = run.run_dir, run.classifier.model
    else:
        model = load_map_run(run_dir).model
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    classes = list(load_map_run(run_dir).key.names)
    results = {}
    for tta in (False, True) if tta_too else (False,):
        confusion, seconds = 0, 0.0
        for ref in split.test:
            tile, truth = TILES / "3band" / f"{ref}.jpg", TILES / "theme" / f"{ref}-theme.png"
            out = tmp / f"{name}{'-tta' if tta else ''}-{ref}.tif"
            m = map_tile(run_dir, tile, out, truth=truth, ignore=0, tta=tta).metrics
            confusion, seconds = confusion + np.array(m["confusion"]), seconds + m["seconds"]
        scores = _scores(confusion)
        ious = "  ".join(f"{c} {v:.3f}" for c, v in zip(classes, scores["iou"], strict=True))
        label = f"{name} --tta" if tta else name
        print(
            f"{label}: {split.name} (9 images) pixel accuracy {scores['pixel_accuracy']:.4f}  "
            f"mIoU(6) {scores['miou']:.4f}  train {wall:.0f} s wall, {cpu / threads:.0f} s CPU/{threads} "
            f"threads  (map {seconds:.1f} s)  load {load()}\n    IoU: {ious}\n    run: {run_dir}",
            flush=True,
        )
        results[label] = {**scores, "train_wall": wall, "train_cpu": cpu / threads}
    return model, results


def _scores(confusion: np.ndarray) -> dict:
    """Pixel accuracy, per-class IoU and their mean over every class of a confusion matrix."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = tp / np.maximum(union, 1)
    return {"pixel_accuracy": tp.sum() / confusion.sum(), "miou": float(iou.mean()), "iou": iou.tolist()}


METHODS = ("default", "pooled", "fixmatch", "mean-teacher")
TODAY = {"model": "unet", "epochs": 4, "monitor": "val_acc"}  # map-train's decoder defaults before issue 28
TARGETS = {"tile 6": (0.87, 0.56), "random": (0.867, None)}  # pixel accuracy, mIoU: mean of two seeds


def method_run(method: str, split: Split, budget: float | None, clock: str = "cpu") -> tuple[Split, dict]:
    """The split (its validation images) and map-train options of a method."""
    from imagefit.maps.training.refs import choose_valid

    options = dict(TODAY) if method == "default" else {"model": "unet"}
    if budget is not None:
        options.update(budget=budget, budget_clock=clock)
    if method == "default":
        return split, options
    pool = sorted([*split.train, *([split.valid] if isinstance(split.valid, str) else split.valid)])
    valid = choose_valid(pool)
    chosen = Split(split.name, [r for r in pool if r not in valid], valid, split.test)
    if method in ("fixmatch", "mean-teacher"):
        options.update(
            unlabelled=tuple(str(TILES / "3band" / f"{ref}.jpg") for ref in split.test), semi=method
        )
    return chosen, options


def compare_methods(args: argparse.Namespace, tmp: Path) -> dict:
    """Every method on every split and seed, side by side; the means of the seeds; the targets.
    With `args.json` each run is recorded as it finishes; with `args.resume` the runs recorded there
    by the same code with the same options are kept, not trained again."""
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"--methods: unknown {', '.join(sorted(unknown))} (of {', '.join(METHODS)})")
    seeds = [int(s) for s in args.seeds.split(",")]
    record = Record(args.json, _settings(args), resume=args.resume)
    for split in _splits(args.splits):
        for method in methods:
            run_split, options = method_run(method, split, args.budget, args.budget_clock)
            options.update(_decoder_options(args))  # --steps-decoder etc., for every method alike
            valid = run_split.valid if isinstance(run_split.valid, str) else ",".join(run_split.valid)
            print(f"{split.name} / {method}: train {len(run_split.train)} images, valid {valid}", flush=True)
            for seed in seeds:
                if record.has(split.name, method, seed):
                    print(
                        f"  seed {seed}: recorded {record.when(split.name, method, seed)}, kept", flush=True
                    )
                    continue
                label = f"{method}-{split.name.replace(' ', '')}-seed{seed}"
                _, rows = quality(label, tmp, args.threads, None, args.tta, run_split, seed=seed, **options)
                record.add(split.name, method, seed, rows)
    table = record.table()
    _print_comparison(table)
    return table


class Record:
    """The runs of a methods comparison in a JSON file, written after each run: the commit and options
    they measured, and per run its split, method, seed, scores (plain and --tta), when it finished
    and the machine's load then."""

    def __init__(self, path: Path | None, settings: dict, resume: bool = False):
        self.path, self.settings = path, {**settings, "commit": _commit()}
        self.runs: list[dict] = []
        if resume and path is not None and path.exists():
            earlier = json.loads(path.read_text())
            if earlier.get("settings") == self.settings and not self.settings["commit"].endswith("+dirty"):
                self.runs = earlier["runs"]
                print(f"resuming {path}: {len(self.runs)} run(s) of code {self.settings['commit']}")
            else:
                print(f"{path} holds runs of other code or options: not resumed", flush=True)

    def _find(self, split: str, method: str, seed: int) -> dict | None:
        return next(
            (r for r in self.runs if (r["split"], r["method"], r["seed"]) == (split, method, seed)), None
        )

    def has(self, split: str, method: str, seed: int) -> bool:
        return self._find(split, method, seed) is not None

    def when(self, split: str, method: str, seed: int) -> str:
        run = self._find(split, method, seed)
        return f"{run['finished']} (load then {run['load']})"

    def add(self, split: str, method: str, seed: int, rows: dict) -> None:
        finished = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        run = {"split": split, "method": method, "seed": seed, "rows": rows, "finished": finished}
        self.runs.append({**run, "load": load()})
        if self.path is not None:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({"settings": self.settings, "runs": self.runs}, indent=1))
            tmp.replace(self.path)

    def table(self) -> dict[str, dict[str, list[dict]]]:
        """split -> method (and "method --tta") -> the rows of its seeds."""
        table: dict[str, dict[str, list[dict]]] = {}
        for run in self.runs:
            for row_label, row in run["rows"].items():
                key = run["method"] + (" --tta" if row_label.endswith("--tta") else "")
                by_key = table.setdefault(run["split"], {}).setdefault(key, [])
                by_key.append({"seed": run["seed"], "finished": run["finished"], **row})
        return table


def _settings(args: argparse.Namespace) -> dict:
    """What makes runs comparable: the budget, its clock, the threads, --tta and the decoder options."""
    return {
        "budget": args.budget, "budget_clock": args.budget_clock, "threads": args.threads, "tta": args.tta,
        "decoder": _decoder_options(args),
    }  # fmt: skip


def _commit() -> str:
    """The git objects of the code a run measures (imagefit/ and this bench: a commit of documents alone
    keeps the runs), with +dirty when tracked files there differ from them."""
    root = Path(__file__).resolve().parents[1]
    trees = [
        subprocess.run(
            ["git", "rev-parse", "--short", f"HEAD:{part}"], cwd=root, capture_output=True, text=True
        )
        for part in ("imagefit", "bench/maps.py", "bench/_common.py")
    ]
    dirty = subprocess.run(
        ["git", "diff", "--quiet", "HEAD", "--", "imagefit", "bench/maps.py", "bench/_common.py"], cwd=root
    )
    code = "/".join(t.stdout.strip() or "unknown" for t in trees)
    return code + ("+dirty" if dirty.returncode != 0 else "")


def _print_comparison(table: dict[str, dict[str, list[dict]]]) -> None:
    print(f"\nside by side (load {load()}); {PUBLISHED}")
    for split, by_method in table.items():
        target = TARGETS["tile 6" if split == "tile 6" else "random"]
        for method, rows in by_method.items():
            for r in rows:
                print(
                    f"  {split:16s} {method:22s} seed {r['seed']}: pixel accuracy {r['pixel_accuracy']:.4f}  "
                    f"mIoU(6) {r['miou']:.4f}  train {r['train_wall'] / 60:.1f} min wall, "
                    f"{r['train_cpu'] / 60:.1f} min CPU/threads  (finished {r['finished']})\n"
                    f"      IoU per class: {'  '.join(f'{v:.3f}' for v in r['iou'])}"
                )
            mean = _mean_row(rows)
            reached = mean["pixel_accuracy"] >= target[0] and (target[1] is None or mean["miou"] >= target[1])
            wanted = f">= {target[0]} acc" + (f", >= {target[1]} mIoU" if target[1] else "")
            print(
                f"  {split:16s} {method:22s} mean of {len(rows)}: "
                f"pixel accuracy {mean['pixel_accuracy']:.4f} ({_spread(rows, 'pixel_accuracy')})  "
                f"mIoU(6) {mean['miou']:.4f} ({_spread(rows, 'miou')})  "
                f"train {mean['train_wall'] / 60:.1f} min  "
                f"(target {wanted}: {'reached' if reached else 'not reached'})\n"
                f"      mean IoU per class: {'  '.join(f'{v:.3f}' for v in mean['iou'])}",
                flush=True,
            )


def _spread(rows: list[dict], key: str) -> str:
    """The range of a score over the seeds."""
    values = [r[key] for r in rows]
    return f"range {min(values):.4f}-{max(values):.4f}"


def _mean_row(rows: list[dict]) -> dict:
    """The mean over seeds of every score (per-class IoU class by class)."""
    out = {k: float(np.mean([r[k] for r in rows])) for k in ("pixel_accuracy", "miou", "train_wall")}
    out["iou"] = np.mean([r["iou"] for r in rows], axis=0).tolist()
    return out


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="unet,fcn,larger_model", help="comma-separated, in this order")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tta", action="store_true", help="also map tile 6 with the decoder's --tta")
    parser.add_argument("--run", action="append", default=[], help="NAME=RUN: map with this run, no training")
    parser.add_argument(
        "--splits",
        default="tile6",
        help="comma-separated: tile6 (the published models' protocol) and/or randomN (9 whole images "
        "held out at random from every tile, seed N: the published U-Net's protocol; decoder only)",
    )
    parser.add_argument("--seeds", default="0", help="the decoder's training seeds, comma-separated")
    parser.add_argument(
        "--methods", default=None, help=f"compare the decoder's methods: {', '.join(METHODS)}"
    )
    parser.add_argument(
        "--protocol", choices=("tile6", "random"), default=None, help="tile6, or random: random0,random1"
    )
    parser.add_argument("--budget", type=float, default=None, help="--methods: minutes of training per run")
    parser.add_argument(
        "--budget-clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="--budget counts CPU time over the threads (as on an idle machine: fair when shared), or wall",
    )
    parser.add_argument("--json", type=Path, default=None, help="--methods: write the scores to this file")
    parser.add_argument(
        "--resume", action="store_true", help="--methods: keep the runs --json holds from this commit"
    )
    for name in ("epochs", "steps", "crop", "batch-size", "lr", "dice", "stages", "jitter"):
        parser.add_argument(f"--{name}-decoder", default=None, help=f"the decoder's --{name}")
    return parser.parse_args()


def _decoder_options(args: argparse.Namespace) -> dict:
    kinds = {
        "epochs": int,
        "steps": int,
        "crop": int,
        "batch_size": int,
        "lr": float,
        "dice": float,
        "stages": str,
        "jitter": float,
    }
    given = {k: getattr(args, f"{k}_decoder") for k in kinds}
    return {k: kinds[k](v) for k, v in given.items() if v is not None}


def main() -> None:
    args = _arguments()
    tmp = map_workspace(args.threads, "imagefit-bench-maps-")
    import torch

    print(f"torch threads {torch.get_num_threads()}; work folder {tmp}; load {load()}", flush=True)
    if args.protocol:
        args.splits = "tile6" if args.protocol == "tile6" else "random0,random1"
    if args.methods:
        compare_methods(args, tmp)
        if args.json:
            print(f"wrote {args.json}")
        return
    names = [n for n in args.models.split(",") if n]
    runs = dict(item.split("=", 1) for item in args.run)
    options = {**MODELS, "unet": {**MODELS["unet"], **_decoder_options(args)}}
    seeds = [int(s) for s in args.seeds.split(",")]
    models, scores, by_seed = {}, {}, {}
    if not args.skip_quality:
        for split in _splits(args.splits):
            test = ", ".join(split.test)
            print(f"{split.name}: train {len(split.train)} images; valid {split.valid}; test: {test}")
            for name in names if split is TILE6 else [n for n in names if n == "unet"]:
                for seed in seeds if name == "unet" else [0]:
                    run = Path(runs[name]) if name in runs else None
                    label = _label(name, split, seed, seeds != [0] and name == "unet")
                    tta = args.tta and name == "unet"
                    model, rows = quality(
                        label, tmp, args.threads, run, tta, split, seed=seed, **options[name]
                    )
                    models.setdefault(name, model)
                    scores.update(rows)
                    base = _label(name, split, seed, False)
                    for row_label, row in rows.items() if name == "unet" else ():  # LABEL, LABEL --tta
                        by_seed.setdefault(base + row_label[len(label) :], []).append(row)
        print(PUBLISHED)
        for name, s in scores.items():
            print(
                f"  {name:32s} pixel accuracy {s['pixel_accuracy']:.4f}  mIoU(6) {s['miou']:.4f}  "
                f"train {s['train_wall']:.0f} s wall / {s['train_cpu']:.0f} s CPU per thread"
            )
        if len(seeds) > 1:
            _print_means(by_seed)
    if not args.skip_speed:
        speed(_speed_models(models), tmp)


def _splits(text: str) -> list[Split]:
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if item == "tile6":
            out.append(TILE6)
        elif item.startswith("random") and item[6:].isdigit():
            out.append(random_split(int(item[6:])))
        else:
            raise SystemExit(f"--splits: unknown split {item!r} (tile6 or randomN)")
    return out


def _label(name: str, split: Split, seed: int, seeded: bool) -> str:
    """A model's label in the printout: its name, its split unless tile 6, its seed if `seeded`."""
    parts = (
        [name]
        + ([split.name.replace(" ", "")] if split is not TILE6 else [])
        + ([f"seed{seed}"] if seeded else [])
    )
    return "-".join(parts)


def _print_means(by_seed: dict[str, list[dict]]) -> None:
    """The mean and range of the decoder's scores over its seeds, per split and mapping (plain, --tta)."""
    for base, rows in by_seed.items():
        acc, miou = (np.array([r[k] for r in rows]) for k in ("pixel_accuracy", "miou"))
        print(
            f"  {base:32s} mean of {len(rows)} seeds: pixel accuracy {acc.mean():.4f} (range {acc.min():.4f}-"
            f"{acc.max():.4f})  mIoU(6) {miou.mean():.4f} ({miou.min():.4f}-{miou.max():.4f})"
        )


def _speed_models(models: dict) -> dict:
    """The trained models (the speed part needs larger_model and the decoder: untrained if missing)."""
    from imagefit.models.segmentation import build_decoder, decoder_record
    from imagefit.models.small_cnn import SmallCNN

    out = {"larger_model": models.get("larger_model") or SmallCNN("larger_model", 3, 6, 28).eval()}
    out["unet"] = models.get("unet") or build_decoder(decoder_record("unet"), 6).eval()
    return out


if __name__ == "__main__":
    main()
