"""Fine-tuning vs linear on the Dogs-vs-Cats photos, with default settings.

    python -m bench.finetune

Trains `--strategy linear` and `--strategy finetune` on the same split, both with defaults, and
prints each one's validation accuracy and loss and its wall time on this machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench._common import DOGS_CATS, offline_env


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ.update(offline_env())
    os.environ.setdefault("IMAGEFIT_CACHE", str(tmp / "cache"))
    from imagefit.train import train

    for strategy in ("linear", "finetune"):
        start = time.perf_counter()
        result = train(DOGS_CATS, strategy=strategy, out=tmp / strategy, progress=False)
        seconds = time.perf_counter() - start
        v = result.metrics["valid"]
        print(
            f"{strategy:8s}: valid accuracy {v['accuracy']:.4f}  loss {v['loss']:.4f}  "
            f"({v['n']} images), {seconds:.0f} s wall",
            flush=True,
        )


if __name__ == "__main__":
    main()
