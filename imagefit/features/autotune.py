"""The fastest correct fp32 CPU engine for a model on this machine, measured once and remembered.

Each candidate runs a sample batch of real images; one whose vectors drift from eager fp32's
(cosine similarity below AGREEMENT) is refused, and the fastest of the rest is kept. Only fp32
engines compete here, so features cached without a run's judgement are always fp32; the bf16
and int8 engines are judged per run by the predictions they give (`imagefit.inference.judge`). The choice
is stored in the cache folder under the model's architecture (`architecture_key`) and a
fingerprint of the machine (CPU, instruction sets, thread count, library versions), so later runs
start with it at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from imagefit.data.atomic import write_json
from imagefit.errors import WriteError
from imagefit.features.cache import cache_root, cache_write_failed
from imagefit.features.engines import Engine, build_engine
from imagefit.heap import release_memory

log = logging.getLogger(__name__)

CANDIDATES = ("onnx", "openvino", "channels_last", "eager")
REFERENCE = "eager"
# Minimum cosine similarity with fp32 vectors. bench/infer.py measures what it means in top-1
# agreement of the ImageNet head on 1,000 real photos.
AGREEMENT = 0.999
_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")


def machine_fingerprint() -> str:
    """A short hash of what decides engine speed: CPU, its instruction sets, threads, libraries."""
    cpu, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    try:  # the installed versions, read without importing the libraries (1 s on a busy machine)
        ort_version = f"{metadata.version('onnxruntime')}/{metadata.version('openvino')}"
    except metadata.PackageNotFoundError:
        ort_version = "none"
    parts = [
        cpu,
        *sorted(flags & set(_CPU_FLAGS)),
        str(torch.get_num_threads()),
        torch.__version__,
        ort_version,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def architecture_key(net: torch.nn.Module, data_config: dict) -> str:
    """What decides an engine's speed for a model: its classes, tensor shapes and input, not its weights.

    A fine-tuned copy of a backbone reuses the backbone's measured choice.
    """
    h = hashlib.sha256(json.dumps(data_config, sort_keys=True, default=str).encode())
    for name, tensor in net.state_dict().items():
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
    h.update(" ".join(sorted({type(m).__name__ for m in net.modules()})).encode())
    return h.hexdigest()[:32]


def choice_path(model_key: str) -> Path:
    """Where the measured choice for `model_key` on this machine is remembered."""
    return cache_root() / "engines" / f"{model_key}-{machine_fingerprint()}.json"


def remembered(model_key: str) -> str | None:
    """The engine measured earlier for this model on this machine, if any."""
    try:
        engine = json.loads(choice_path(model_key).read_text())["engine"]
    except (OSError, ValueError, KeyError):
        return None
    return engine if engine in CANDIDATES else None  # a choice an older imagefit made among others


def choose_engine(
    net: torch.nn.Module, data_config: dict, sample: torch.Tensor, onnx_path: Path, model_key: str
) -> Engine:
    """Measure the candidates on `sample`, remember the fastest that agrees with fp32, return it."""
    reference, seconds, agreement, errors = None, {}, {}, {}
    for name in (REFERENCE, *[c for c in CANDIDATES if c != REFERENCE]):
        try:
            out, seconds[name] = _time(build_engine(net, data_config, name, onnx_path), sample)
        except Exception as exc:  # an engine this model or machine cannot run is skipped
            errors[name] = f"{exc.__class__.__name__}: {exc}"
            continue
        reference = out if reference is None else reference
        agreement[name] = min_cosine(out, reference)
    release_memory()  # the candidates' buffers (an ONNX Runtime arena holds ~25 MB per image)
    good = [n for n in seconds if agreement[n] >= AGREEMENT]
    best = min(good, key=seconds.get)
    rates = {n: round(len(sample) / s, 2) for n, s in seconds.items()}
    log.info("engine %s chosen (images/s on %d images: %s)", best, len(sample), rates)
    record = {"engine": best, "images_per_s": rates, "min_cosine": agreement, "errors": errors}
    try:
        write_json(choice_path(model_key), {**record, "agreement_threshold": AGREEMENT})
    except WriteError as exc:  # measured again next time, nothing else lost
        cache_write_failed(exc)
    return build_engine(net, data_config, best, onnx_path)


def _time(engine: Engine, x: torch.Tensor) -> tuple[np.ndarray, float]:
    """Outputs of a warm-up run, and the seconds of a second run."""
    out = engine(x)
    start = time.perf_counter()
    engine(x)
    return out, time.perf_counter() - start


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest cosine similarity between matching rows of `a` and `b`."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    dot = np.sum(a * b, 1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(np.where(norms > 0, dot / np.maximum(norms, 1e-30), 1.0)))
