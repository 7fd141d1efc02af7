"""Feature-extraction throughput, end to end from JPEG files: imagefit vs a plain PyTorch + PIL loop.

    python bench/extract.py [--limit 500] [--batch-size 32]

Both paths use the same backbone and the same preprocessing record; the baseline is timm's model in
eager fp32 NCHW with full-size PIL decoding in one process. Prints images/s of each and the ratio.
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


def imagefit_path(model, data_config, files, batch_size, engine) -> tuple[float, np.ndarray, str]:
    from imagefit.features import FeatureExtractor

    extractor = FeatureExtractor(model, data_config, engine, batch_size, cache=False, progress=False)
    engine_name = extractor.engine(len(files)).name  # builds it now (an ONNX export is cached on disk)
    extractor(files[:batch_size])  # warm-up
    start = time.perf_counter()
    features = extractor(files)
    rate = len(files) / (time.perf_counter() - start)
    return rate, features.vectors, engine_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--engine", default="auto")
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ["HF_HUB_OFFLINE"] = "1"

    from imagefit.models import create_backbone

    backbone = create_backbone()
    files = dogs_cats_files("train")[: args.limit]
    cfg = backbone.data_config
    size, threads = cfg["input_size"][1:], torch.get_num_threads()
    print(f"{len(files)} JPEGs, {backbone.spec.name} at {size}, {threads} threads")
    ours, a, engine = imagefit_path(backbone.model, cfg, files, args.batch_size, args.engine)
    print(f"imagefit ({engine} engine, draft decode, parallel workers): {ours:7.1f} images/s")
    base, b = baseline(backbone.model, cfg, files, args.batch_size)
    print(f"baseline (eager fp32 NCHW, full PIL decode, 1 process):   {base:7.1f} images/s")
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"ratio imagefit / baseline: {ours / base:.2f}x   (feature cosine similarity min {cos.min():.4f})")


if __name__ == "__main__":
    main()
