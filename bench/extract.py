"""Feature-extraction throughput, end to end from JPEG files: imagefit vs a plain PyTorch + PIL loop.

    python -m bench.extract [--limit 500] [--batch-size 32] [--engine auto] [--sweep]

Both paths use the same backbone and the same preprocessing record; the baseline is timm's model in
eager fp32 NCHW with full-size PIL decoding in one process. Prints where imagefit's time goes
(decoding and preprocessing alone, the engine alone on decoded batches), images/s of each path and
the ratio. `--sweep` also tries every split of the two cores between decode workers and engine
threads.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

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


def extractor(model, data_config, files, batch_size, engine, workers=None):
    """An extractor whose engine is built (and, for 'auto', measured) on a real batch."""
    from imagefit.data import iterate_batches
    from imagefit.features import FeatureExtractor

    ex = FeatureExtractor(model, data_config, engine, batch_size, workers, cache=False, progress=False)
    sample = next(iterate_batches(files[:batch_size], data_config, batch_size, 0)).images
    ex.engine(len(files), sample)
    return ex, sample


def end_to_end(ex, files) -> tuple[float, np.ndarray]:
    ex(files[: ex.batch_size])  # warm-up: workers start, the engine allocates
    start = time.perf_counter()
    features = ex(files)
    return len(files) / (time.perf_counter() - start), features.vectors


def sweep(model, cfg, files, batch_size, engine) -> None:
    cores = os.cpu_count() or 2
    for threads in range(1, cores + 1):
        for workers in range(0, cores + 1):
            torch.set_num_threads(threads)
            ex, _ = extractor(model, cfg, files, batch_size, engine, workers)
            rate, _ = end_to_end(ex, files)
            print(f"  engine threads {threads}, decode workers {workers}: {rate:6.1f} images/s")
    torch.set_num_threads(cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--image-size", type=int, default=None, help="default: the registry's (288)")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="imagefit's figures only")
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ["HF_HUB_OFFLINE"] = "1"

    from imagefit.data import iterate_batches
    from imagefit.models import create_backbone

    backbone = create_backbone(image_size=args.image_size)
    files = dogs_cats_files("train")[: args.limit]
    cfg, model = backbone.data_config, backbone.model
    size, threads, load = cfg["input_size"][1:], torch.get_num_threads(), os.getloadavg()[0]
    print(f"{len(files)} JPEGs, {backbone.spec.name} at {size}, {threads} threads, load {load:.2f}")
    ex, _ = extractor(model, cfg, files, args.batch_size, args.engine)
    engine = ex.engine(len(files))
    batches = [b.images for b in iterate_batches(files[:256], cfg, args.batch_size)]
    pooled, alone = (decode_only(files, cfg, args.batch_size, w) for w in (None, 0))
    print(f"decode + preprocess only: {pooled:7.1f} images/s (default workers), {alone:7.1f} (main process)")
    print(f"engine only ({engine.name}, decoded batches): {engine_only(engine, batches):7.1f} images/s")
    ours, a = end_to_end(ex, files)
    print(f"imagefit ({engine.name} engine, draft decode, default workers): {ours:7.1f} images/s")
    if args.sweep:
        sweep(model, cfg, files, args.batch_size, engine.name)
    if args.no_baseline:
        return
    base, b = baseline(model, cfg, files, args.batch_size)
    print(f"baseline (eager fp32 NCHW, full PIL decode, 1 process):   {base:7.1f} images/s")
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"ratio imagefit / baseline: {ours / base:.2f}x   (feature cosine similarity min {cos.min():.4f})")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
