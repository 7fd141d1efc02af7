"""Same results before and after a change: a linear run on Dogs-vs-Cats and a scratch run on digits.

    python -m bench.same_results run OUT        # trains both through the CLI, writes OUT/
    python -m bench.same_results compare A B    # prints the differences of two such folders

`run` drives only the command line (`imagefit train`, `imagefit predict`), which stays the same
across refactors, so two checkouts can be compared: the linear run's metrics.json numbers and its
predictions of the validation photos, and the scratch run's weights (largest absolute difference).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import DOGS_CATS, offline_env
from bench._digits import write_digits


def _imagefit(*args: str) -> float:
    """Run one imagefit command in a fresh process; its wall time."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imagefit", "-q", *args], check=True, env=offline_env())
    return time.perf_counter() - start


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    seconds = _imagefit("train", str(DOGS_CATS), "--out", str(out / "linear"), "--seed", "0")
    _imagefit("predict", str(out / "linear"), str(DOGS_CATS / "valid"), "--csv", str(out / "valid.csv"))
    print(f"linear run: {seconds:.1f} s")
    digits = Path(tempfile.mkdtemp(prefix="imagefit-same-")) / "digits"
    write_digits(digits, size=28)
    scratch = ["--strategy", "scratch", "--arch", "larger_model", "--image-size", "28", "--channels", "1"]
    seconds = _imagefit(
        "train", str(digits), *scratch, "--epochs", "2", "--seed", "0", "--out", str(out / "scratch")
    )
    print(f"scratch run: {seconds:.1f} s")


def _numbers(obj, prefix: str = "") -> dict[str, float]:
    """Every number in a metrics tree, by its dotted path (timings left out)."""
    if isinstance(obj, dict):
        found = {}
        for key, value in obj.items():
            if key != "seconds":
                found.update(_numbers(value, f"{prefix}{key}."))
        return found
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        return {prefix.rstrip("."): float(obj)}
    return {}


def compare(a: Path, b: Path) -> None:
    from safetensors.torch import load_file

    ma = _numbers(json.loads((a / "linear" / "metrics.json").read_text()))
    mb = _numbers(json.loads((b / "linear" / "metrics.json").read_text()))
    for key in sorted(ma.keys() | mb.keys()):
        same = key in ma and key in mb and abs(ma[key] - mb[key]) <= 1e-9
        if not same:
            print(f"linear metrics.json {key}: {ma.get(key)} -> {mb.get(key)}")
    print(f"linear metrics.json: {len(ma)} numbers compared")
    rows = [list(csv.reader((d / "valid.csv").open())) for d in (a, b)]
    labels = sum(x[1] == y[1] for x, y in zip(rows[0][1:], rows[1][1:], strict=True))
    worst = max(
        abs(float(p) - float(q))
        for x, y in zip(rows[0][1:], rows[1][1:], strict=True)
        for p, q in zip(x[2:], y[2:], strict=True)
    )
    n = len(rows[0]) - 1
    print(f"linear predictions: {labels}/{n} labels equal, largest probability change {worst:.2e}")
    wa = load_file(str(a / "scratch" / "model.safetensors"))
    wb = load_file(str(b / "scratch" / "model.safetensors"))
    diff = max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)
    same = wa.keys() == wb.keys()
    print(f"scratch weights: {len(wa)} tensors, keys equal {same}, largest difference {diff:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    sub.add_parser("run").add_argument("out", type=Path)
    both = sub.add_parser("compare")
    both.add_argument("a", type=Path)
    both.add_argument("b", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run(args.out) if args.verb == "run" else compare(args.a, args.b)


if __name__ == "__main__":
    main()
