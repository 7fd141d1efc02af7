"""Evaluating a cached linear run on the Dogs-vs-Cats photos, and what test-time augmentation buys.

    python -m bench.evaluate [--no-tta]

With a fresh, empty feature cache: trains `--strategy linear` (which writes RUN/report.html after
evaluating its validation split through the cache), then times two whole `imagefit -q evaluate RUN
DATA` commands on the 1,000 validation photos (the features come from the cache: no forward pass).
Then compares validation log loss and accuracy of plain predictions with `tta="flip"` (image and
mirror) and `tta="crops"` (also the four corners zoomed in), each view timed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from bench._common import DOGS_CATS, offline_env


def timed_evaluate(run: Path, env: dict) -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "imagefit", "-q", "evaluate", str(run), str(DOGS_CATS)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def tta_table(run: Path) -> None:
    from imagefit.runs import load

    classifier = load(run)
    files = sorted((DOGS_CATS / "valid").rglob("*.jpg"))
    y = np.array([classifier.classes.index(p.parent.name) for p in files])
    for tta in (False, "flip", "crops"):
        start = time.perf_counter()
        probs = classifier.predict(files, tta=tta, progress=False).probabilities.astype(np.float64)
        seconds = time.perf_counter() - start
        probs /= probs.sum(1, keepdims=True)
        loss, accuracy = log_loss(y, probs), accuracy_score(y, probs.argmax(1))
        print(f"tta={tta!s:5}  log loss {loss:.4f}  accuracy {accuracy:.4f}  ({seconds:.1f} s)")


def main() -> None:
    from imagefit.train import train

    tmp = Path(tempfile.mkdtemp(prefix="imagefit-bench-"))
    env = {**offline_env(), "IMAGEFIT_CACHE": str(tmp / "cache")}
    os.environ.update(env)
    start = time.perf_counter()
    result = train(DOGS_CATS, out=tmp / "run", progress=False)
    wall = time.perf_counter() - start
    after = wall - result.metrics["seconds"]["total"]
    print(
        f"train (linear, features computed): {wall:.1f} s, of which {after:.1f} s after the metrics "
        "(saving, validation evaluated from the cache, figures, report.html)"
    )
    first, second = timed_evaluate(tmp / "run", env), timed_evaluate(tmp / "run", env)
    print(
        f"imagefit -q evaluate RUN DATA (1,000 validation photos, cached): {first:.1f} s, then {second:.1f} s"
    )
    if "--no-tta" not in sys.argv:
        tta_table(tmp / "run")


if __name__ == "__main__":
    main()
