"""Predictions from an exported ONNX classifier: no PyTorch model needed, only the file.

The graph gives logits; its metadata (`graph_metadata`) holds the class names, the preprocessing
and, for a multi-label run, the per-label thresholds: then the logits go through a sigmoid and a
label is predicted from its threshold, as the run folder predicts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from imagefit.data.images import ImageReadError, open_image
from imagefit.data.paths import collect_inputs
from imagefit.data.preprocess import decode_size, eval_array, supports
from imagefit.errors import ModelError, OptionError
from imagefit.features.onnx_runtime import onnx_session
from imagefit.inference.predictions import Predictions

FEW = 64  # up to this many images are decoded in this process, without torch


def graph_metadata(classes, data_config: dict, thresholds=None) -> dict[str, str]:
    """What an exported graph carries besides its weights: classes, preprocessing, thresholds."""
    metadata = {
        "imagefit_classes": json.dumps(list(classes)),
        "imagefit_data_config": json.dumps(data_config),
    }
    if thresholds is not None:
        metadata["imagefit_thresholds"] = json.dumps([float(t) for t in thresholds])
    return metadata


class OnnxClassifier:
    """An ONNX file written by `imagefit export`, with its classes and preprocessing inside."""

    def __init__(self, path: str | os.PathLike):
        self.session = onnx_session(path)
        meta = self.session.get_modelmeta().custom_metadata_map
        if "imagefit_classes" not in meta:
            raise ModelError(f"{path} was not written by imagefit export (no class names inside)")
        self.classes = json.loads(meta["imagefit_classes"])
        config = json.loads(meta["imagefit_data_config"])
        self.data_config = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        self.fixed_batch = self.session.get_inputs()[0].shape[0]
        thresholds = meta.get("imagefit_thresholds")
        self.thresholds = None if thresholds is None else np.asarray(json.loads(thresholds), np.float32)
        self.familiarity = None  # the run's Familiarity, when the graph also answers its features

    @property
    def has_features(self) -> bool:
        """Whether the graph answers the pre-logits features beside the logits."""
        return len(self.session.get_outputs()) > 1

    @property
    def multilabel(self) -> bool:
        return self.thresholds is not None

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Softmax of the logits (multi-label: sigmoid of each)."""
        if self.multilabel:
            return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
        return _softmax(logits)

    def predict(
        self,
        inputs: Iterable[str | os.PathLike],
        batch_size: int = 32,
        workers: int | None = None,
        progress: bool = True,
        tta: bool | str = False,
        **_ignored,
    ) -> Predictions:
        """Class probabilities for image files and folders."""
        if tta:
            raise OptionError("test-time augmentation needs the run folder, not an exported ONNX model")
        paths = collect_inputs(inputs)
        if isinstance(self.fixed_batch, int):
            batch_size = self.fixed_batch
        if len(paths) <= FEW and supports(self.data_config):
            return self._predict_few(paths)
        from tqdm.auto import tqdm

        from imagefit.data.loader import iterate_batches

        probs = np.zeros((len(paths), len(self.classes)), np.float32)
        features: list[np.ndarray | None] = [None] * len(paths)
        ok = np.zeros(len(paths), bool)
        errors = []
        bar = tqdm(total=len(paths), desc="predict", unit="img", disable=not progress, leave=False)
        for batch in iterate_batches(paths, self.data_config, batch_size, workers):
            errors.extend((paths[i], message) for i, message in batch.errors)
            if batch.images is not None:
                rows = batch.indices.numpy()
                logits, vectors = self._run(batch.images.numpy())
                probs[rows] = self.probabilities(logits)
                for row, vector in zip(
                    rows, vectors if vectors is not None else [None] * len(rows), strict=True
                ):
                    features[row] = vector
                ok[rows] = True
            bar.update(len(batch.indices) + len(batch.errors))
        bar.close()
        kept = [p for p, good in zip(paths, ok, strict=True) if good]
        return self._judged(Predictions(self.classes, kept, probs[ok], errors, self.thresholds), features)

    def _predict_few(self, paths: list[Path]) -> Predictions:
        """A few images decoded and preprocessed with PIL and NumPy alone, one by one."""
        kept, rows, errors = [], [], []
        for path in paths:
            try:
                with open_image(path, min_size=decode_size(self.data_config)) as img:
                    rows.append(eval_array(img, self.data_config))
                kept.append(path)
            except ImageReadError as exc:
                errors.append((path, str(exc)))
        probs = np.zeros((0, len(self.classes)), np.float32)
        answers = [self._run(np.stack([r])) for r in rows]
        if rows:
            probs = np.concatenate([self.probabilities(logits) for logits, _ in answers])
        features = [None if vectors is None else vectors[0] for _, vectors in answers]
        return self._judged(Predictions(self.classes, kept, probs, errors, self.thresholds), features)

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits, features or None) of a batch."""
        n = len(x)
        if isinstance(self.fixed_batch, int) and n < self.fixed_batch:
            x = np.concatenate([x, np.zeros((self.fixed_batch - n, *x.shape[1:]), x.dtype)])
        outputs = self.session.run(None, {"images": x})
        return outputs[0][:n], (outputs[1][:n] if len(outputs) > 1 else None)

    def _judged(self, preds: Predictions, features: list) -> Predictions:
        """`preds` with familiarity and unknown flags, when the run keeps a familiarity."""
        kept = [f for f in features if f is not None]
        if self.familiarity is not None and kept:
            preds.familiarity = self.familiarity.scores(np.stack(kept), preds.probabilities)
            preds.unknown = self.familiarity.unknown(preds.familiarity)
        return preds


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def is_onnx_model(path: str | os.PathLike) -> bool:
    """True for a path that names an .onnx file."""
    return Path(path).suffix == ".onnx" and Path(path).is_file()
