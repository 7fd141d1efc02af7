"""Training the seeds' `larger_model` from scratch on scikit-learn's digits, at 28x28x1.

    python -m bench.scratch_digits [--epochs N] [--batch-size B] [--lr LR] [--workers W] [--threads T]

Writes the 1,797 digits as PNG class folders (every 5th image of a class to valid/), trains the
Keras course's CNN (conv 30@5x5, pool, conv 15@3x3, pool, dropout 0.2, dense 128, dense 50) with
Adam and a one-cycle schedule on the CPU, and prints the best validation accuracy and the wall
time of the training call. Target: at least 97 % validation accuracy in a few minutes on 2 cores.

One torch thread by default: a model this small gains little from two, and on a 2-core machine
whose cores are also busy with anything else, two threads waiting on each other ran ~10x slower.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench._common import offline_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 keeps torch's default")
    args = parser.parse_args()
    os.environ.update(offline_env())
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from bench._digits import write_digits
    from imagefit.train import train

    tmp = Path(tempfile.mkdtemp(prefix="imagefit-bench-scratch-"))
    data = write_digits(tmp / "digits", size=28)
    start = time.perf_counter()
    result = train(
        data,
        "scratch",
        arch="larger_model",
        out=tmp / "run",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer="adam",
        seed=args.seed,
        image_size=28,
        progress=False,
        workers=args.workers,
    )
    seconds = time.perf_counter() - start
    m = result.metrics
    print(
        f"larger_model from scratch, 28x28x1, {m['epochs']} epochs: "
        f"valid accuracy {m['valid']['accuracy']:.4f}  loss {m['valid']['loss']:.4f} "
        f"({m['valid']['n']} images; best epoch {m['best']['epoch']}), "
        f"train accuracy {m['train']['accuracy']:.4f}"
    )
    print(
        f"wall time {seconds:.1f} s for train ({seconds / m['epochs']:.2f} s per epoch, "
        f"{torch.get_num_threads()} torch threads)"
    )
    print(f"run folder: {result.run_dir}")


if __name__ == "__main__":
    main()
