"""What the safety checks cost on the real photos, and how often a random SIGKILL lands mid-write.

    python -m bench.hardening [--kills 12]

1. The scan before training (headers, end markers, content hashes) on the 2,000 Dogs-vs-Cats photos,
   next to the folder discovery it follows, in the same run.
2. `imagefit check` on the same folder: full decode vs --quick.
3. A tiny scratch run killed with SIGKILL at random moments and resumed, `--kills` times: how many
   kills left a temporary file (the kill landed while a checkpoint was being written) and whether the
   last checkpoint loaded every time.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import DOGS_CATS, offline_env


def scan_cost() -> None:
    from imagefit.data.check import check
    from imagefit.data.folders import discover_dataset
    from imagefit.data.scan import scan_dataset

    t0 = time.perf_counter()
    dataset = discover_dataset(DOGS_CATS)
    t1 = time.perf_counter()
    scan = scan_dataset(dataset)
    t2 = time.perf_counter()
    n = len(dataset.train) + len(dataset.valid)
    print(f"discover: {t1 - t0:.2f} s; scan: {t2 - t1:.2f} s for {n} files ({n / (t2 - t1):.0f} files/s)")
    print(f"  scan found: {len(scan.problems)} unusable, {len(scan.leaks)} leaks, {scan.copies} copies")
    for quick in (True, False):
        t = time.perf_counter()
        report = check(DOGS_CATS, quick=quick)
        dt = time.perf_counter() - t
        label = "check --quick" if quick else "check (full decode)"
        print(f"{label}: {dt:.2f} s, {report.checked / dt:.0f} files/s, {len(report.problems)} unusable")


def kill_stress(kills: int, seed: int = 0) -> None:
    from imagefit.train.engine.state import load_state

    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="imagefit-kill-"))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import make_folder

    data = make_folder(root / "data", n_train=6, n_valid=2)
    run = root / "run"
    last = run / "checkpoints" / "last.safetensors"
    env = {**offline_env(), "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    fresh = ["train", str(data), "--strategy", "scratch", "--arch", "conv4@3-pool2-dense8"]
    fresh += ["--image-size", "16", "--epochs", "100000", "-j", "0", "--out", str(run)]
    mid_write, loaded, epochs = 0, 0, []
    for k in range(kills):
        args = fresh if k == 0 else ["train", "--resume", str(run), "-j", "0"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "imagefit", "-q", *args], env=env, stderr=subprocess.DEVNULL
        )
        mtime = last.stat().st_mtime_ns if last.exists() else 0
        while not last.exists() or last.stat().st_mtime_ns == mtime:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        leftovers = list(run.rglob(".*.tmp"))
        mid_write += bool(leftovers)
        for tmp in leftovers:
            tmp.unlink()
        epochs.append(load_state(last)["position"]["epoch"])
        loaded += 1
    print(f"kills: {kills}; last checkpoint loaded after {loaded}; kills during a file write: {mid_write}")
    print(f"  epoch reached after each kill: {epochs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-cache-"))
    scan_cost()
    kill_stress(args.kills)


if __name__ == "__main__":
    main()
