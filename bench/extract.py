"""Feature-extraction throughput, end to end from JPEG files: imagefit vs a plain PyTorch + PIL loop.

    nice -n 5 python -m bench.extract [--limit 500] [--batch-size 32] [--runs DIR] [--sweep]

Both paths use the same backbone (EfficientNet-Lite0) and preprocessing record (288 px); the
baseline is timm's model in eager fp32 NCHW with full-size PIL decoding in one process. imagefit's
automatic engine is that of a Dogs-vs-Cats linear run (trained first, or reused from
DIR/dogs-vs-cats as bench.infer leaves it): the fastest engine judged eligible on the run's
validation images. Prints the CPU flags, the decode-only ceiling (PIL with reduced-size DCT
decoding, in 0, 1 and 2 worker processes), the engine alone on decoded batches, imagefit end to
end with 0 and 1 decode workers, the run-less fp32 automatic engine, the baseline, the ratio and
the load average. `--sweep` also tries every split of the cores between decode workers and
engine threads.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench._common import dogs_cats_files


def baseline(model, data_config, files, batch_size) -> tuple[float, np.ndarray]:
    from PIL import Image
    from timm.data import create_transform

    transform = create_transform(**data_config)
    out = []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(files), batch_size):
            batch = torch.stack([transform(Image.open(f).convert("RGB")) for f in files[i : i + batch_size]])
            out.append(model.forward_head(model.forward_features(batch), pre_logits=True).numpy())
    return len(files) / (time.perf_counter() - start), np.concatenate(out)


def decode_only(files, data_config, batch_size, workers) -> float:
    from imagefit.data import iterate_batches

    start = time.perf_counter()
    for _ in iterate_batches(files, data_config, batch_size, workers):
        pass
    return len(files) / (time.perf_counter() - start)


def engine_only(engine, batches: list[torch.Tensor]) -> float:
    engine(batches[0])
    start = time.perf_counter()
    for x in batches:
        engine(x)
    return sum(len(x) for x in batches) / (time.perf_counter() - start)


def extractor(model, data_config, files, batch_size, engine, workers=None, calibration=None):
    """An extractor whose engine is built (and, for 'auto', measured) on a real batch."""
    from imagefit.data import iterate_batches
    from imagefit.features import FeatureExtractor

    options = {"cache": False, "progress": False, "calibration": calibration}
    ex = FeatureExtractor(model, data_config, engine, batch_size, workers, **options)
    sample = next(iterate_batches(files[:batch_size], data_config, batch_size, 0)).images
    ex.engine(len(files), sample)
    return ex, sample


def end_to_end(ex, files) -> tuple[float, np.ndarray]:
    ex(files[: ex.batch_size])  # warm-up: workers start, the engine allocates
    start = time.perf_counter()
    features = ex(files)
    return len(files) / (time.perf_counter() - start), features.vectors


def sweep(model, cfg, files, batch_size, engine, calibration=None) -> None:
    cores = os.cpu_count() or 2
    for threads in range(1, cores + 1):
        for workers in range(0, cores + 1):
            torch.set_num_threads(threads)
            ex, _ = extractor(model, cfg, files, batch_size, engine, workers, calibration)
            rate, _ = end_to_end(ex, files)
            print(f"  engine threads {threads}, decode workers {workers}: {rate:6.1f} images/s")
    torch.set_num_threads(cores)


def run_engine(runs: Path | None, n_images: int) -> tuple[object, str, object]:
    """(classifier, its automatic engine, calibration) of a Dogs-vs-Cats linear run."""
    from bench.infer import trained_run
    from imagefit.runs import load

    run = trained_run("dogs-vs-cats", runs or Path(tempfile.mkdtemp(prefix="imagefit-bench-runs-")))
    classifier = load(run)
    engine = classifier.engine_for("auto", n_images)
    verdict = (classifier.judgement or {}).get("engines", {}).get(engine, {})
    fp32 = (classifier.judgement or {}).get("fp32_score")
    print(f"run {run}: automatic engine {engine} (agreement with fp32 {verdict.get('agreement')}, "
          f"validation accuracy {verdict.get('score')}, fp32 {fp32})")  # fmt: skip
    return classifier, engine, classifier.calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--engine", default=None, help="default: the run's automatic engine")
    parser.add_argument("--runs", type=Path, default=None, help="a folder holding (or to keep) the run")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="imagefit's figures only")
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ["HF_HUB_OFFLINE"] = "1"

    from imagefit.data import iterate_batches
    from imagefit.features.machine import shown_flags

    files = dogs_cats_files("train")[: args.limit]
    classifier, engine_name, calibration = run_engine(args.runs, len(files))
    engine_name = args.engine or engine_name
    cfg, model = classifier.data_config, classifier.model
    size, threads, load = cfg["input_size"][1:], torch.get_num_threads(), os.getloadavg()[0]
    print(f"{len(files)} JPEGs at {size}, {threads} threads, {os.cpu_count()} cores, load {load:.2f}")
    print(f"CPU flags: {shown_flags()}")
    rates = {w: decode_only(files, cfg, args.batch_size, w) for w in (0, 1, 2)}
    print("decode + preprocess only (PIL, reduced-size DCT): "
          + ", ".join(f"{r:.1f} images/s with {w} workers" for w, r in rates.items()))  # fmt: skip
    batches = [b.images for b in iterate_batches(files[:256], cfg, args.batch_size)]
    ours = {}
    for workers in (0, 1):
        ex, _ = extractor(model, cfg, files, args.batch_size, engine_name, workers, calibration)
        if workers == 0:
            alone = engine_only(ex.engine(1), batches)
            print(f"engine only ({engine_name}, decoded batches): {alone:7.1f} images/s")
        ours[workers], a = end_to_end(ex, files)
        print(f"imagefit end to end ({engine_name}, {workers} decode workers): {ours[workers]:7.1f} images/s")
    fp32, _ = extractor(model, cfg, files, args.batch_size, "auto")
    fp32_rate, _ = end_to_end(fp32, files)
    print(f"imagefit end to end, run-less fp32 choice ({fp32.engine(1).name}): {fp32_rate:7.1f} images/s")
    if args.sweep:
        sweep(model, cfg, files, args.batch_size, engine_name, calibration)
    if args.no_baseline:
        return
    base, b = baseline(model, cfg, files, args.batch_size)
    best = max(ours.values())
    print(f"baseline (eager fp32 NCHW, full PIL decode, 1 process):   {base:7.1f} images/s")
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"ratio imagefit ({engine_name}, best workers) / baseline: {best / base:.2f}x at {best:.1f} "
          f"images/s (feature cosine similarity min {cos.min():.4f})")  # fmt: skip
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
