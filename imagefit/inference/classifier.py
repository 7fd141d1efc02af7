"""A classifier: a timm model with its class names and preprocessing, predicting on files or images."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from imagefit.data.images import ImageReadError, warn_skipped
from imagefit.data.memory import is_in_memory, picture
from imagefit.data.paths import collect_inputs
from imagefit.data.transforms import decode_size, eval_transform
from imagefit.errors import DataError, OptionError
from imagefit.features.extract import FeatureExtractor, Features
from imagefit.features.layers import VIEWS
from imagefit.features.quantize import Calibration
from imagefit.inference.predictions import Predictions

log = logging.getLogger(__name__)


TTA_VIEWS = {False: ("image",), "flip": ("image", "mirror"), "crops": VIEWS}


def tta_views(tta: bool | str) -> tuple[str, ...]:
    """The views whose predictions test-time augmentation `tta` (False, True/"flip", "crops") averages."""
    key = "flip" if tta is True else (tta or False)
    if key not in TTA_VIEWS:
        raise OptionError(f"unknown test-time augmentation {tta!r}: use flip or crops")
    return TTA_VIEWS[key]


class Classifier:
    """A timm model whose classifier head names `classes`, with the preprocessing it was trained on."""

    def __init__(
        self,
        model: torch.nn.Module,
        classes: Sequence[str],
        data_config: dict,
        info: dict,
        thresholds: Sequence[float] | None = None,
    ):
        if model.num_classes != len(classes):
            raise ValueError(f"model has {model.num_classes} outputs but {len(classes)} classes")
        self.model = model.eval()
        self.classes = list(classes)
        self.data_config = data_config
        self.info = dict(info)
        # multi-label: sigmoid outputs, a label predicted from its threshold; None: softmax classes
        self.thresholds = None if thresholds is None else np.asarray(thresholds, np.float32)
        self.familiarity = None  # a Familiarity when the run keeps one: predictions say which are unknown
        self._extractors: dict[tuple, FeatureExtractor] = {}
        # A run's classifier: (--engine value, images) -> the engine to use, from the run's judgement
        self.engine_resolver: Callable[[str, int], str] | None = None
        self.judgement: dict | None = None  # the run's engines judged on its validation images
        self.calibration: Calibration | None = None  # what calibrates the run's int8 graph
        self._resolved: dict[str, str] = {}

    @property
    def multilabel(self) -> bool:
        return self.thresholds is not None

    def extractor(
        self,
        engine: str = "auto",
        batch_size: int = 32,
        workers: int | None = None,
        cache: bool = True,
        progress: bool = True,
        view: str = "image",
        calibration: Calibration | None = None,
    ) -> FeatureExtractor:
        """The (memoised) feature extractor of this model's backbone, for one view of the images.

        An int8 engine is calibrated on `calibration`, by default the run's own."""
        calibration = calibration or self.calibration
        key = (engine, batch_size, workers, cache, progress, view, calibration and calibration.digest)
        if key not in self._extractors:
            self._extractors[key] = FeatureExtractor(
                self.model, self.data_config, engine, batch_size, workers, cache, progress, view=view,
                calibration=calibration,
            )  # fmt: skip
        return self._extractors[key]

    def engine_for(self, value: str, n_images: int) -> str:
        """The engine that `--engine value` (NAME, auto or no-NAME) means for a job of `n_images`.

        A run's classifier asks the run's judgement (`engine_resolver`); others take NAME as it is."""
        if value in self._resolved:
            return self._resolved[value]
        if self.engine_resolver is None:
            if value.startswith("no-"):
                raise OptionError("--engine no-NAME chooses among a run's judged engines: pass a run folder")
            return value
        engine = self.engine_resolver(value, n_images)
        if self.judgement is not None or not (value == "auto" or value.startswith("no-")):
            self._resolved[value] = engine  # a choice made on a judgement (or forced) stays
        return engine

    def weights_changed(self) -> None:
        """Drop the memoised extractors (their engines hold the old weights)."""
        self.release_engines()

    def release_engines(self) -> None:
        """Drop the memoised extractors and the memory their engines hold."""
        self._extractors.clear()

    @torch.inference_mode()
    def logits(self, features: np.ndarray) -> np.ndarray:
        """The classifier head applied to pre-logits features."""
        head = self.model.get_classifier()
        weight = next(head.parameters())  # on a GPU when an engine moved the model there
        x = torch.from_numpy(np.ascontiguousarray(features, np.float32)).to(weight.device)
        return head(x).float().cpu().numpy()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Softmax (multi-label: sigmoid) of the classifier head applied to pre-logits features."""
        logits = torch.from_numpy(self.logits(features))
        return (logits.sigmoid() if self.multilabel else logits.softmax(-1)).numpy()

    def predict(self, inputs, tta: bool | str = False, **extract_options) -> Predictions:
        """Class probabilities for image files and folders; unreadable files are reported, not fatal.

        Images held in memory (PIL images, NumPy arrays, encoded bytes) are accepted too, alone or
        in a list, and go through `predict_images`. `tta` (test-time augmentation, files only): True
        or "flip" averages the probabilities of each image and its mirror image; "crops" adds the
        four corners zoomed in. Each view's features are cached.
        """
        inputs = [inputs] if is_in_memory(inputs) or isinstance(inputs, str | os.PathLike) else list(inputs)
        if any(is_in_memory(item) for item in inputs):
            if tta:
                raise OptionError("test-time augmentation works on files: pass paths, not images in memory")
            options = {k: v for k, v in extract_options.items() if k in ("engine", "batch_size")}
            return self.predict_images(inputs, **options)
        paths = collect_inputs(inputs)
        views = tta_views(tta)
        if "engine" in extract_options:
            extract_options["engine"] = self.engine_for(extract_options["engine"], len(paths))
        first = self.extractor(**extract_options)(paths, desc="predict")
        preds = self.predictions_from(first)
        if len(views) == 1:
            return preds
        total = preds.probabilities.astype(np.float64)
        for view in views[1:]:
            features = self.extractor(**extract_options, view=view)(preds.paths, desc=f"predict {view}")
            if not features.ok.all():
                raise DataError(f"{features.errors[0][0]} decoded once but not again: is it changing?")
            total += self.probabilities(features.vectors)
        preds.probabilities = (total / len(views)).astype(np.float32)
        return self.judged(preds, first.vectors)  # the image's own view, the averaged probabilities

    def predict_images(
        self,
        images: Sequence,
        names: Sequence[str] | None = None,
        engine: str = "auto",
        batch_size: int = 32,
    ) -> Predictions:
        """Class probabilities for images in memory (or single image files), in order, nothing cached.

        An item that is no picture is reported in `errors` under its name (default `image N`).
        The engine is that of `self.extractor(engine, batch_size, 0, False, False)`, memoised.
        """
        names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        engine = self.engine_for(engine, len(images))
        transform, min_size = eval_transform(self.data_config), decode_size(self.data_config)
        tensors, kept, errors = [], [], []
        for item, name in zip(images, names, strict=True):
            try:
                tensors.append(transform(picture(item, name, min_size)))
                kept.append(Path(name))
            except ImageReadError as exc:
                errors.append((Path(name), str(exc)))
        extractor = self.extractor(engine, batch_size, 0, cache=False, progress=False)
        vectors = [np.zeros((0, extractor.dim), np.float32)]
        for start in range(0, len(tensors), batch_size):
            batch = torch.stack(tensors[start : start + batch_size])
            vectors.append(extractor.engine(len(tensors), batch)(batch))
        vectors = np.concatenate(vectors)
        probs = self.probabilities(vectors)
        return self.judged(Predictions(self.classes, kept, probs, errors, self.thresholds), vectors)

    def predictions_from(self, features: Features) -> Predictions:
        """Predictions for already extracted features."""
        kept = [p for p, good in zip(features.paths, features.ok, strict=True) if good]
        probs = self.probabilities(features.vectors) if kept else np.zeros((0, len(self.classes)))
        for path, reason in features.errors:
            warn_skipped(path, reason)
        preds = Predictions(self.classes, kept, probs, features.errors, self.thresholds)
        return self.judged(preds, features.vectors)

    def judged(self, preds: Predictions, vectors: np.ndarray) -> Predictions:
        """`preds` with each image's familiarity and unknown flag, when the run keeps a familiarity."""
        if self.familiarity is not None and len(vectors):
            preds.familiarity = self.familiarity.scores(vectors, preds.probabilities)
            preds.unknown = self.familiarity.unknown(preds.familiarity)
        return preds
