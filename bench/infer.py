"""Every CPU engine on trained runs: images/s, agreement with fp32 predictions, validation accuracy.

    nice -n 5 python -m bench.infer [--datasets dogs-vs-cats,ucmerced] [--rate-images 256] [--runs DIR]

For each dataset, a linear run of EfficientNet-Lite0 at its registry size (288 px) is trained on the
shared photos (or reused from DIR/<dataset> when --runs names a folder that holds it); training
judges its engines and records the automatic choice (RUN/engines.json), whose cost is printed. Then
every engine runs on all the run's validation images (`imagefit.inference.judge`, judge_all): the
share of images whose predicted class (UC Merced: one of 21) equals the fp32 prediction, and the
validation accuracy. Images/s is model only: --rate-images validation images decoded beforehand,
each batch timed through the engine. The int8 engines are calibrated on 256 of the run's training
images. Prints the CPU flags and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from bench._common import DATA

ENGINES = (
    "eager", "channels_last", "bf16", "onnx", "openvino", "openvino-bf16", "onnx-int8", "openvino-int8",
)  # fmt: skip
DATASETS = {"dogs-vs-cats": DATA / "dogs-vs-cats", "ucmerced": DATA / "ucmerced"}


def trained_run(name: str, runs: Path) -> Path:
    """A linear run on the dataset, trained now unless `runs` holds it already."""
    from imagefit.train import train

    run = runs / name
    if not (run / "model.safetensors").is_file():
        began = time.perf_counter()
        train(DATASETS[name], out=run, progress=False)
        print(f"{name}: linear run trained in {time.perf_counter() - began:.0f} s ({run})")
    return run


def run_engine(engine, images: torch.Tensor, batch_size: int) -> float:
    """Images/s of `engine` over `images` in batches, after a warm-up batch."""
    engine(images[:batch_size])
    seconds = 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        began = time.perf_counter()
        engine(batch)
        seconds += time.perf_counter() - began
    return len(images) / seconds


def bench_run(name: str, run: Path, rate_images: int, batch_size: int) -> None:
    from imagefit.data import iterate_batches
    from imagefit.inference.judge import judge_engines
    from imagefit.runs import load
    from imagefit.runs.engines import judge_inputs, read_engines

    classifier = load(run)
    at_training = read_engines(run) or {}
    paths, truth, calibration = judge_inputs(run, classifier)
    images = torch.cat([b.images for b in iterate_batches(paths[:rate_images], classifier.data_config, 64)])
    rates = {}
    for engine in ENGINES:
        built = classifier.extractor(engine, batch_size, cache=False, progress=False, calibration=calibration)
        rates[engine] = run_engine(built.engine(len(images), images[:batch_size]), images, batch_size)
    record = judge_engines(classifier, paths, truth, calibration, ENGINES, batch_size, judge_all=True)
    metric, verdicts = record["metric"], record["engines"]
    size = classifier.data_config["input_size"][1]
    threads, load = torch.get_num_threads(), os.getloadavg()[0]
    print(f"\n{name}: {record['images']} validation images, {len(classifier.classes)} classes, {size} px, "
          f"batch {batch_size}, {threads} threads, load {load:.2f}")  # fmt: skip
    print(f"{'engine':<15}{'precision':>10}{'images/s':>10}{'x eager':>9}{'agree':>9}{metric:>10}  eligible")
    for engine in ENGINES:
        v = verdicts[engine]
        agree = "-" if v["agreement"] is None else f"{v['agreement']:.2%}"
        score = "-" if v["score"] is None else f"{v['score']:.2%}"
        print(f"{engine:<15}{v['precision']:>10}{rates[engine]:>10.1f}{rates[engine] / rates['eager']:>8.2f}x"
              f"{agree:>9}{score:>10}  {'yes' if v['eligible'] else v['reason']}")  # fmt: skip
    eligible = [e for e in ENGINES if verdicts[e]["eligible"]]
    fastest = max(eligible, key=rates.get) if eligible else "-"
    timed = {k: v["images_per_s"] for k, v in at_training.get("engines", {}).items()}
    print(f"fp32 {metric} {record['fp32_score']:.2%}; fastest eligible engine here: {fastest}")
    print(f"automatic choice judged at training: {at_training.get('choice', '-')} in "
          f"{at_training.get('seconds', '-')} s (images/s timed on 16 images: {json.dumps(timed)}); "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="dogs-vs-cats,ucmerced")
    parser.add_argument("--rate-images", type=int, default=256, help="validation images timed per engine")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--runs", type=Path, default=None, help="a folder to keep (and reuse) the runs in")
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    from imagefit.features.machine import shown_flags

    print(f"CPU flags: {shown_flags()}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
    runs = args.runs or Path(tempfile.mkdtemp(prefix="imagefit-bench-runs-"))
    for name in args.datasets.split(","):
        if name not in DATASETS:
            raise SystemExit(f"unknown dataset {name}: choose from {', '.join(DATASETS)}")
        bench_run(name, trained_run(name, runs), args.rate_images, args.batch_size)


if __name__ == "__main__":
    main()
