"""Linear transfer learning on the Dogs-vs-Cats photos: accuracy, and the feature cache's effect.

    python bench/linear.py

Trains `--strategy linear` twice with identical settings and a fresh, empty feature cache: the
first run extracts features, the second must reuse them. Times each `imagefit.train` call in this
process and, separately, each whole `imagefit train` command (which adds Python's start-up and
imports), and prints validation accuracy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import DOGS_CATS, offline_env


def timed_api(out: Path) -> tuple[float, dict]:
    from imagefit.train import train

    start = time.perf_counter()
    result = train(DOGS_CATS, out=out, progress=False)
    return time.perf_counter() - start, result.metrics


def timed_cli(out: Path, env: dict) -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "imagefit", "-q", "train", str(DOGS_CATS), "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ.update(offline_env(), IMAGEFIT_CACHE=str(tmp / "cache-api"))
    first, m1 = timed_api(tmp / "run1")
    second, m2 = timed_api(tmp / "run2")
    print(
        f"valid accuracy {m1['valid']['accuracy']:.4f}  loss {m1['valid']['loss']:.4f}  "
        f"({m1['valid']['n']} images, C={m1['head']['C']})"
    )
    print(
        f"imagefit.train: first {first:.1f} s (features computed {m1['features']['computed']}), "
        f"second {second:.1f} s (reused {m2['features']['reused']}): {second / first:.1%} of the first"
    )
    env = {**offline_env(), "IMAGEFIT_CACHE": str(tmp / "cache-cli")}
    c1, c2 = timed_cli(tmp / "cli1", env), timed_cli(tmp / "cli2", env)
    print(f"imagefit train (whole command): first {c1:.1f} s, second {c2:.1f} s: {c2 / c1:.1%} of the first")


if __name__ == "__main__":
    main()
