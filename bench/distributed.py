"""Distributed training on this machine: 2 processes (torchrun, gloo) against 1, wall time and accuracy.

    python -m bench.distributed [--per-class 100] [--valid-per-class 100] [--strategy finetune]

A subset of the Dogs-vs-Cats photos (linked under /tmp) is trained on with the bundled
EfficientNet-Lite0, once with `torchrun --nproc-per-node 1` and once with `--nproc-per-node 2`,
both with the same global batch size and the same seed. `finetune` runs DistributedDataParallel
(`--stages head:1:2e-3,top2:1:1e-4` by default, a short run); `linear` shards the feature
extraction over the ranks and fits on rank 0. Each process of the two-process run gets one
thread, the one-process run gets both cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import DOGS_CATS, offline_env

ROOT = Path(__file__).resolve().parents[1]


def subset(root: Path, per_class: int, valid_per_class: int) -> Path:
    """train/ and valid/ class folders linking the first photos of each class."""
    for split, n in (("train", per_class), ("valid", valid_per_class)):
        for label in ("cats", "dogs"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for src in sorted(
                (DOGS_CATS / split / label).glob("*.jpg"), key=lambda p: int(p.stem.split(".")[1])
            )[:n]:
                (folder / src.name).symlink_to(src)
    return root


def run(n: int, data: Path, out: Path, args) -> tuple[float, dict]:
    env = {**offline_env(), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(max(1, 2 // n))}
    env["IMAGEFIT_CACHE"] = str(out.parent / f"cache{n}")  # each run computes its own features
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]
    cmd += ["-m", "imagefit", "-q", "train", str(data), "--out", str(out), "--strategy", args.strategy]
    if args.strategy == "finetune":
        cmd += ["--stages", args.stages, "--batch-size", str(args.batch_size)]
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--valid-per-class", type=int, default=100)
    parser.add_argument("--strategy", choices=["finetune", "linear"], default="finetune")
    parser.add_argument("--stages", default="head:1:2e-3,top2:1:1e-4")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imagefit-ddp-"))
    data = subset(work / "data", args.per_class, args.valid_per_class)
    print(
        f"{args.strategy} on {2 * args.per_class} train / {2 * args.valid_per_class} valid photos, "
        f"efficientnet_lite0, load {os.getloadavg()[0]:.2f}"
    )
    results = {}
    for n in (1, 2):
        seconds, metrics = run(n, data, work / f"run{n}", args)
        results[n] = seconds
        valid = metrics["valid"]
        history = work / f"run{n}" / "history.csv"
        train_s = (
            sum(float(r.split(",")[-1]) for r in history.read_text().splitlines()[1:])
            if history.is_file()
            else None
        )
        train_txt = f", training epochs {train_s:.1f} s" if train_s is not None else ""
        print(
            f"{n} process{'es' if n > 1 else ''}: wall {seconds:6.1f} s{train_txt}; "
            f"valid accuracy {valid['accuracy']:.4f} loss {valid['loss']:.4f} ({valid['n']} images)"
        )
    print(f"wall time 2 processes / 1 process: {results[2] / results[1]:.2f}; load {os.getloadavg()[0]:.2f}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
