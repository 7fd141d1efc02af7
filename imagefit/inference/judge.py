"""Which engines a run may use: judged by the predictions they give on its validation images.

An engine is eligible when its predictions equal fp32's on at least AGREEMENT of the validation
images and its accuracy (multi-label: samples-F1) is less than MAX_DROP below fp32's. fp32 engines
are eligible as they are (the automatic fp32 choice already checks their vectors against eager
PyTorch); a reduced-precision one (bf16, int8) is judged unless its timing is under half the
fastest fp32 engine's (it could not be chosen). The automatic choice is the fastest eligible engine.

It is made cheap: every engine is timed on one small batch; the fp32 reference features come from
the feature cache (a linear run computed them when training); the validation images are decoded
once, and each judged engine runs on every decoded batch; the head is a single linear layer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from imagefit.data.loader import iterate_batches
from imagefit.features.engines import unavailable
from imagefit.features.machine import native_bf16
from imagefit.features.quantize import Calibration
from imagefit.models.defaults import precision_of

log = logging.getLogger(__name__)

AGREEMENT = 0.995  # share of validation images whose predictions equal fp32's
MAX_DROP = 0.002  # accuracy (or samples-F1) an engine may lose against fp32: 0.2 points
FP32 = ("openvino", "onnx", "channels_last", "eager")
REDUCED = ("openvino-int8", "onnx-int8", "openvino-bf16", "bf16")
TIMING_IMAGES = 16
# A reduced-precision engine timed below this share of the fastest fp32 engine is not judged: it
# could not be chosen. Not 1: on a busy machine one timing of 16 images can be off by half.
SLOWER = 0.5


@dataclass
class Verdict:
    """One engine on one run: its speed, what it keeps of fp32's predictions, and whether it may be used."""

    engine: str
    precision: str
    images_per_s: float | None = None  # on one batch of TIMING_IMAGES validation images
    agreement: float | None = None  # share of validation images predicted as fp32 predicts them
    score: float | None = None  # validation accuracy, or samples-F1 for a multi-label run
    eligible: bool = False
    reason: str = ""


def candidates(forbid: Sequence[str] = ()) -> list[str]:
    """The engines worth judging on this machine: bf16 ones only where the CPU computes bf16."""
    names = [*FP32, *REDUCED]
    if not native_bf16():
        names = [n for n in names if precision_of(n) != "bf16"]
    return [n for n in names if n not in forbid and unavailable(n) is None]


def judge_engines(
    classifier,
    paths: Sequence[Path],
    truth: np.ndarray,
    calibration: Calibration | None,
    engines: Sequence[str] | None = None,
    batch_size: int = 32,
    judge_all: bool = False,
) -> dict:
    """Time `engines` (default: `candidates()`) on the run's validation images `paths` (labels in
    `truth`: class indices, or a 0/1 matrix for a multi-label run), judge the reduced-precision ones,
    and return the record: each engine's verdict, the fp32 score and the automatic choice.

    `judge_all`: judge every engine, fp32 ones and those slower than fp32 too (benchmarks)."""
    started = time.perf_counter()
    engines = list(engines or candidates())
    reference = classifier.extractor("auto", batch_size, cache=True, progress=False)(
        paths, desc="fp32 reference"
    )
    kept = [p for p, ok in zip(reference.paths, reference.ok, strict=True) if ok]
    truth = np.asarray(truth)[reference.ok]
    fp32 = predicted(classifier, reference.vectors)
    reference_score = score(classifier, fp32, truth)
    sample = next(iterate_batches(kept[:TIMING_IMAGES], classifier.data_config, TIMING_IMAGES, 0)).images
    verdicts, built = {}, {}
    for name in engines:
        verdict = verdicts[name] = Verdict(name, precision_of(name))
        try:
            built[name] = classifier.extractor(
                name, batch_size, cache=False, progress=False, calibration=calibration
            )
            verdict.images_per_s = round(_rate(built[name].engine(len(kept), sample), sample), 2)
        except Exception as exc:  # an engine this model or machine cannot run is left out, with why
            verdict.reason = f"unavailable: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
            built.pop(name, None)
    fastest_fp32 = max((verdicts[n].images_per_s or 0 for n in built if precision_of(n) == "fp32"), default=0)
    for name in built:
        verdict = verdicts[name]
        if verdict.precision == "fp32" and not judge_all:
            verdict.eligible, verdict.reason = True, "fp32"
        elif not judge_all and (verdict.images_per_s or 0) < SLOWER * fastest_fp32:
            verdict.reason = f"not judged: under {SLOWER:.0%} of the fastest fp32 engine's speed"
    judged = [n for n in built if not verdicts[n].reason]
    outputs = _run_all({n: built[n] for n in judged}, kept, classifier.data_config, batch_size, len(kept))
    for name, vectors in outputs.items():
        _judge(verdicts[name], classifier, vectors, fp32, truth, reference_score)
    built.clear()
    classifier.release_engines()  # the judged engines' buffers; the chosen one is built again on use
    eligible = [v for v in verdicts.values() if v.eligible and v.images_per_s]
    choice = max(eligible, key=lambda v: v.images_per_s).engine if eligible else "auto"
    seconds = round(time.perf_counter() - started, 1)
    log.info("engines judged on %d validation images in %.1f s: %s chosen", len(kept), seconds, choice)
    return {
        "choice": choice,
        "metric": "samples_f1" if classifier.multilabel else "accuracy",
        "fp32_score": reference_score,
        "images": len(kept),
        "thresholds": {"agreement": AGREEMENT, "max_drop": MAX_DROP},
        "seconds": seconds,
        "engines": {n: asdict(v) for n, v in verdicts.items()},
    }


def _judge(
    verdict: Verdict, classifier, vectors: np.ndarray, fp32: np.ndarray, truth, reference_score
) -> None:
    preds = predicted(classifier, vectors)
    same = np.all(preds == fp32, axis=1) if preds.ndim == 2 else preds == fp32
    verdict.agreement = round(float(np.mean(same)), 5)
    verdict.score = score(classifier, preds, truth)
    drop = reference_score - verdict.score
    verdict.eligible = verdict.agreement >= AGREEMENT and drop < MAX_DROP
    if not verdict.eligible:
        verdict.reason = (
            f"agrees with fp32 on {verdict.agreement:.2%} of the images (needs {AGREEMENT:.1%})"
            if verdict.agreement < AGREEMENT
            else f"loses {100 * drop:.2f} points (at most {100 * MAX_DROP:.1f} allowed)"
        )


def _run_all(engines: dict, paths: list[Path], data_config: dict, batch_size: int, n: int) -> dict:
    """Every engine's vectors of `paths`, the images decoded once."""
    out = {name: [] for name in engines}
    for batch in iterate_batches(paths, data_config, batch_size):
        for name, extractor in engines.items():
            out[name].append(extractor.engine(n, batch.images)(batch.images))
    return {name: np.concatenate(parts) for name, parts in out.items() if parts}


def _rate(engine, sample: torch.Tensor) -> float:
    """Images per second of `engine` on `sample`: the better of two runs after a warm-up (on a
    shared machine the other's pauses are not the engine's)."""
    engine(sample)
    seconds = []
    for _ in range(2):
        began = time.perf_counter()
        engine(sample)
        seconds.append(time.perf_counter() - began)
    return len(sample) / min(seconds)


def predicted(classifier, vectors: np.ndarray) -> np.ndarray:
    """Class indices (multi-label: a 0/1 matrix of the labels over their thresholds)."""
    probs = classifier.probabilities(vectors)
    if classifier.multilabel:
        return (probs >= classifier.thresholds).astype(np.int8)
    return probs.argmax(1)


def score(classifier, preds: np.ndarray, truth: np.ndarray) -> float:
    """Accuracy, or samples-F1 for a multi-label run."""
    if not classifier.multilabel:
        return round(float(np.mean(preds == truth)), 5)
    from sklearn.metrics import f1_score

    return round(float(f1_score(truth, preds, average="samples", zero_division=0)), 5)
