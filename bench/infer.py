"""CPU inference engines, model only: images/s and top-1 agreement with eager fp32 on real photos.

    python -m bench.infer [--limit 1000] [--batch-size 64] [--image-size 224]

EfficientNet-Lite0 with its ImageNet head on the Dogs-vs-Cats validation photos, decoded and
preprocessed once beforehand. Each engine runs every batch; its rate is images over the seconds
spent in the engine, and its agreement is the share of photos whose top ImageNet class equals
eager fp32's. Then imagefit's automatic choice is measured as `imagefit train` makes it and
compared with the fastest engine that agrees on at least 99.5 % of the photos.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench._common import dogs_cats_files

ENGINES = ("eager", "channels_last", "bf16", "onnx", "openvino", "openvino-bf16")
REQUIRED = 0.995


def photos(files: list[Path], data_config: dict) -> torch.Tensor:
    from imagefit.data import iterate_batches

    return torch.cat([b.images for b in iterate_batches(files, data_config, batch_size=64)])


def run_engine(engine, images: torch.Tensor, batch_size: int) -> tuple[float, np.ndarray]:
    engine(images[:batch_size])  # warm-up
    out, seconds = [], 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        began = time.perf_counter()
        out.append(engine(batch))
        seconds += time.perf_counter() - began
    return len(images) / seconds, np.concatenate(out)


def automatic_choice(model, data_config: dict, images: torch.Tensor) -> tuple[str, dict]:
    """What FeatureExtractor's 'auto' picks for the pre-logits embedding, on a fresh cache."""
    from imagefit.features.autotune import architecture_key, choice_path, choose_engine
    from imagefit.features.cache import cache_root, model_key
    from imagefit.features.layers import Embedding

    net = Embedding(model)
    key, arch = model_key(model, data_config, net.describe()), architecture_key(net, data_config)
    engine = choose_engine(net, data_config, images[:16], cache_root() / "onnx" / f"{key}.onnx", arch)
    return engine.name, json.loads(choice_path(arch).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    os.environ["IMAGEFIT_CACHE"] = tempfile.mkdtemp(prefix="imagefit-bench-")
    os.environ["HF_HUB_OFFLINE"] = "1"

    from imagefit.features.engines import build_engine
    from imagefit.models import create_backbone

    backbone = create_backbone(image_size=args.image_size)
    cfg, model = backbone.data_config, backbone.model
    images = photos(dogs_cats_files("valid")[: args.limit], cfg)
    print(
        f"{len(images)} photos, {backbone.spec.name} at {args.image_size}, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}"
    )
    rates, tops = {}, {}
    onnx_path = Path(os.environ["IMAGEFIT_CACHE"]) / "logits.onnx"
    for name in ENGINES:
        rates[name], logits = run_engine(build_engine(model, cfg, name, onnx_path), images, args.batch_size)
        tops[name] = logits.argmax(1)
    print(f"{'engine':<14}{'images/s':>10}{'x eager':>9}{'top-1 agree':>13}")
    for name in ENGINES:
        agree = float(np.mean(tops[name] == tops["eager"]))
        print(f"{name:<14}{rates[name]:>10.1f}{rates[name] / rates['eager']:>8.2f}x{agree:>12.2%}")
    correct = [n for n in ENGINES if np.mean(tops[n] == tops["eager"]) >= REQUIRED]
    fastest = max(correct, key=rates.get)
    chosen, record = automatic_choice(model, cfg, images)
    print(
        f"automatic choice: {chosen} (sample rates {record['images_per_s']}, "
        f"min cosine { ({k: round(v, 5) for k, v in record['min_cosine'].items()}) })"
    )
    print(
        f"fastest engine with >= {REQUIRED:.1%} agreement: {fastest}; "
        f"automatic choice {'matches' if chosen == fastest else 'DIFFERS'}; load {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
