"""The served classifier: its engine measured and warmed before the first request, and its record.

Batches run in a few fixed sizes, the powers of two up to the largest batch (a batch of 13 runs as
8 + 4 + 1), and every size runs once before the first request. An inference engine keeps buffers for
each input shape it has seen, so batch sizes drawn freely by the traffic would make the server's
memory grow with every new size for as long as it runs; with fixed sizes it is all taken at start.
Measured with OpenVINO on EfficientNet-Lite0: ready at 1.45 GB with batches up to 16 (the default),
2.0 GB up to 32; sixteen clients then grew it by under 2 % (it had grown by 15 % with free sizes).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imagefit.data.transforms import eval_transform
from imagefit.errors import ModelError
from imagefit.inference.classifier import Classifier
from imagefit.runs import load, read_config

log = logging.getLogger(__name__)

_LONG_JOB = 1_000_000  # a server predicts many images: measuring the engines pays for itself
_WARM_IMAGES = 8


class ServedModel:
    """A run's classifier predicting pictures in batches through one memoised engine."""

    def __init__(
        self, classifier: Classifier, engine: str = "auto", max_batch: int = 16, record: dict | None = None
    ):
        if not isinstance(classifier, Classifier):
            raise ModelError(
                "imagefit serve needs a run folder (made by imagefit train), not an exported model"
            )
        self.classifier = classifier
        self.engine_option = classifier.engine_for(engine, _LONG_JOB)  # a run's judged choice, or forced
        self.max_batch = max_batch
        self.record = record or {}
        self.engine_name = self._warm()

    @classmethod
    def from_run(cls, run: str | Path, engine: str = "auto", max_batch: int = 16) -> ServedModel:
        """The classifier of run folder `run`, with its config as the /model record."""
        config = read_config(run)
        record = {
            "run": Path(run).name,
            "backbone": config.backbone,
            "arch": config.arch,
            "strategy": config.strategy,
            "format_version": config.format_version,
            "imagefit_version": config.imagefit_version,
        }
        return cls(load(run), engine, max_batch, record)

    @property
    def classes(self) -> list[str]:
        return self.classifier.classes

    @property
    def thresholds(self) -> np.ndarray | None:
        """The per-label thresholds of a multi-label run; None for a single-label one."""
        return self.classifier.thresholds

    def _warm(self) -> str:
        """Build the engine (measured on this machine when none is remembered) and run it once."""
        sample = torch.stack([eval_transform(self.classifier.data_config)(im) for im in _warm_pictures()])
        extractor = self.classifier.extractor(
            self.engine_option, self.max_batch, 0, cache=False, progress=False
        )
        engine = extractor.engine(_LONG_JOB, sample)
        pictures = _warm_pictures()
        for size in batch_sizes(self.max_batch):
            self.predict((pictures * size)[:size])
        name = getattr(engine, "name", type(engine).__name__)
        log.info("serving with the %s engine", name)
        return name

    def predict(self, pictures: list[Image.Image]) -> np.ndarray:
        """Class probabilities, one row per picture, computed in batches of the fixed sizes."""
        rows = [probs for probs, _ in self.answers(pictures)]
        return np.stack(rows) if rows else np.zeros((0, len(self.classes)), np.float32)

    def answers(self, pictures: list[Image.Image]) -> list[tuple[np.ndarray, float | None]]:
        """(class probabilities, familiarity or None) per picture, in batches of the fixed sizes."""
        out, start = [], 0
        for size in split_batch(len(pictures), self.max_batch):
            chunk = pictures[start : start + size]
            preds = self.classifier.predict_images(chunk, engine=self.engine_option, batch_size=size)
            if preds.errors:
                raise ModelError(preds.errors[0][1])
            familiarity = preds.familiarity if preds.familiarity is not None else [None] * size
            out += [
                (row, None if f is None else float(f))
                for row, f in zip(preds.probabilities, familiarity, strict=True)
            ]
            start += size
        return out

    def describe(self) -> dict:
        """Classes, backbone, preprocessing and run format: what GET /model answers."""
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in self.classifier.data_config.items()}
        described = {
            **self.record,
            "classes": self.classes,
            "preprocessing": config,
            "engine": self.engine_name,
        }
        verdict = ((self.classifier.judgement or {}).get("engines") or {}).get(self.engine_option)
        if verdict is not None:  # how far the judged engine keeps fp32's predictions on the validation images
            described["engine_precision"] = verdict.get("precision")
            described["engine_agreement"] = verdict.get("agreement")
            described["engine_score"] = verdict.get("score")
        if self.classifier.familiarity is not None:
            described["familiarity_threshold"] = round(self.classifier.familiarity.threshold, 6)
        if self.thresholds is not None:
            described["task"] = "multilabel"
            described["thresholds"] = {
                c: round(float(t), 6) for c, t in zip(self.classes, self.thresholds, strict=True)
            }
        return described


def batch_sizes(max_batch: int) -> list[int]:
    """The sizes batches run in: the powers of two up to `max_batch`, and `max_batch` itself."""
    sizes = [1 << k for k in range(max_batch.bit_length()) if 1 << k <= max_batch]
    return sorted({*sizes, max_batch})


def split_batch(n: int, max_batch: int) -> list[int]:
    """`n` images as batches of the fixed sizes, largest first (13, up to 32: 8, 4, 1)."""
    out = []
    for size in reversed(batch_sizes(max_batch)):
        while n >= size:
            out.append(size)
            n -= size
    return out


def _warm_pictures() -> list[Image.Image]:
    """Smooth random pictures: something for the engines to be timed and checked on."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (_WARM_IMAGES, 8, 8, 3), dtype=np.uint8)
    return [Image.fromarray(pixels).resize((320, 320), Image.BILINEAR) for pixels in small]
