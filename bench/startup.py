"""Start-up time of the command line: help, a usage error, and predicting one image.

    python bench/startup.py [--runs 5]

Each figure is the median of whole processes (`python -m imagefit ...`), the commands taken in
turns so that a busy machine slows them alike, beside `python -c "import torch"` measured in
the same turns for scale. `predict` runs on a small linear run trained first in a temporary
folder (a few Dogs-vs-Cats photos, bundled weights), each time on an image it has not seen, so
its features are computed and not read from the cache.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import dogs_cats_files, offline_env

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"--help": 0.5, "train --help": 0.5, "usage error": 0.5, "predict 1 image": 3.0}


def linear_run(tmp: Path, env: dict) -> tuple[Path, list[Path]]:
    """A linear run on 6 photos per class and split; the valid photos it did not see to predict."""
    data = tmp / "data"
    files = {split: dogs_cats_files(split) for split in ("train", "valid")}
    for split, paths in files.items():
        for cls in ("cats", "dogs"):
            for path in [p for p in paths if p.parent.name == cls][:6]:
                (data / split / cls).mkdir(parents=True, exist_ok=True)
                (data / split / cls / path.name).symlink_to(path)
    cmd = [sys.executable, "-m", "imagefit", "-q", "train", str(data), "--out", str(tmp / "run")]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return tmp / "run", files["valid"][-40:]  # far from the 6 of each class used above


def seconds(cmd: list[str], env: dict, code: int = 0) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one whole process."""
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != code:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return took, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    tmp = Path(tempfile.mkdtemp(prefix="imagefit-startup-"))
    env = {**offline_env(), "PYTHONPATH": str(ROOT), "IMAGEFIT_CACHE": str(tmp / "cache")}
    run, unseen = linear_run(tmp, env)
    imagefit = [sys.executable, "-m", "imagefit"]
    commands = {
        'python -c "import torch"': ([sys.executable, "-c", "import torch"], 0),
        "--help": ([*imagefit, "--help"], 0),
        "train --help": ([*imagefit, "train", "--help"], 0),
        "usage error": ([*imagefit, "train"], 2),
        "predict 1 image": (None, 0),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    load_before = os.getloadavg()
    for i in range(runs):
        for name, (cmd, code) in commands.items():
            cmd = cmd or [*imagefit, "predict", str(run), str(unseen[i])]
            wall, used = seconds(cmd, env, code)
            times[name].append(wall)
            cpu[name].append(used)
    load_after = os.getloadavg()
    torch_median = statistics.median(times['python -c "import torch"'])
    print(f"{'command':<28}{'median s':>10}{'min':>8}{'max':>8}{'/ torch':>9}{'cpu s':>8}{'target':>12}")
    for name, values in times.items():
        median, target = statistics.median(values), TARGETS.get(name)
        verdict = "" if target is None else f"< {target:g}" + (" ok" if median < target else " MISSED")
        print(
            f"{name:<28}{median:>10.2f}{min(values):>8.2f}{max(values):>8.2f}"
            f"{median / torch_median:>9.2f}{statistics.median(cpu[name]):>8.2f}{verdict:>12}"
        )
    print(f"wall: median of {runs} whole processes; cpu s: their median user + system time")
    print(f"{runs} runs each; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"({os.cpu_count()} cores)")  # fmt: skip


if __name__ == "__main__":
    main()
