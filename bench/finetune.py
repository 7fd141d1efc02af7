"""Fine-tuning vs linear on the Dogs-vs-Cats photos.

    python -m bench.finetune [--stages SPEC] [--head-init linear|random] [--image-size N] [--wise A]

Trains `--strategy linear` and `--strategy finetune` on the same split (finetune with defaults
unless options are given) and prints each one's validation accuracy, loss, error count and wall
time on this machine, then the images each one gets wrong.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench._common import DOGS_CATS, offline_env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stages", default=None)
    parser.add_argument("--head-init", default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--wise", type=float, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ.update(offline_env())
    os.environ.setdefault("IMAGEFIT_CACHE", str(tmp / "cache"))
    from imagefit.train import train

    given = (("stages", args.stages), ("head_init", args.head_init), ("wise", args.wise))
    finetune = {k: v for k, v in given if v is not None}
    wrong = {}
    for strategy in ("linear", "finetune"):
        start = time.perf_counter()
        own = {**finetune, "image_size": args.image_size} if strategy == "finetune" else {}
        result = train(DOGS_CATS, strategy=strategy, out=tmp / strategy, progress=False, **own)
        seconds = time.perf_counter() - start
        v = result.metrics["valid"]
        wrong[strategy] = _errors(result.classifier)
        print(
            f"{strategy:8s}: valid accuracy {v['accuracy']:.4f}  loss {v['loss']:.4f}  "
            f"({v['n']} images, {len(wrong[strategy])} wrong), {seconds:.0f} s wall",
            flush=True,
        )
        if "wise" in result.metrics:
            w = result.metrics["wise"]
            alone = w["fine_tuned_only"]["valid"]
            print(
                f"          saved weights: {w['fine_tuned_share']:g} fine-tuned + "
                f"{1 - w['fine_tuned_share']:g} linear probe (WiSE-FT); fine-tuned alone: valid accuracy "
                f"{alone['accuracy']:.4f}  loss {alone['loss']:.4f}",
                flush=True,
            )
    for strategy, names in wrong.items():
        print(f"{strategy} wrong: {' '.join(sorted(names))}")


def _errors(classifier) -> set[str]:
    """Validation images the classifier gets wrong (through the feature cache: no new forward pass)."""
    files = sorted((DOGS_CATS / "valid").rglob("*.jpg"))
    preds = classifier.predict(files, progress=False)
    return {p.name for p, label in zip(preds.paths, preds.labels, strict=True) if label != p.parent.name}


if __name__ == "__main__":
    main()
