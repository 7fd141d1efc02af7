"""Features of a dataset's splits, for the strategies that fit on them (linear, finetune's probe)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from imagefit.data.folders import Sample
from imagefit.data.images import warn_skipped
from imagefit.errors import DataError
from imagefit.features.extract import FeatureExtractor, Features
from imagefit.inference.classifier import Classifier
from imagefit.train.engine import distributed

log = logging.getLogger(__name__)


def extract_split(extractor: FeatureExtractor, samples: Sequence[Sample], split: str) -> Features:
    """The features of one split's images; each unreadable file is named once, then counted."""
    features = extractor([s.path for s in samples], desc=f"{split} features")
    for path, reason in features.errors:
        warn_skipped(path, reason)
    if features.errors:
        log.warning("%s: skipped %d unreadable image(s) of %d", split, len(features.errors), len(samples))
    return features


def labels_of(samples: Sequence[Sample], features: Features) -> np.ndarray:
    """The labels of the samples whose features were extracted."""
    return np.array([s.label for s, ok in zip(samples, features.ok, strict=True) if ok], np.int64)


def label_matrix(samples: Sequence[Sample], features: Features, n_classes: int) -> np.ndarray:
    """The (n, n_classes) 0/1 label sets of the samples whose features were extracted."""
    kept = [s for s, ok in zip(samples, features.ok, strict=True) if ok]
    y = np.zeros((len(kept), n_classes), np.int64)
    for row, sample in enumerate(kept):
        y[row, list(sample.label_set)] = 1
    return y


def check_classes(classes: Sequence[str], y: np.ndarray, root) -> None:
    """Every class has a readable training image, or the run stops naming those without."""
    present = np.bincount(y, minlength=len(classes))
    empty = [c for c, n in zip(classes, present, strict=True) if n == 0]
    if empty:
        raise DataError(f"no readable training images for class(es) {', '.join(empty)} in {root}")


def embed_in_shares(extractor: FeatureExtractor, paths: list, what: str = "features") -> None:
    """Each rank embeds its share of `paths` into the shared cache, then sees the others' shares."""
    mine = distributed.shard(paths)
    distributed.agree(lambda: extractor(mine, desc=what), what)
    if extractor.cache is not None:
        extractor.cache.reload()  # shards the other ranks wrote


def split_scores(classifier: Classifier, features: Features, y: np.ndarray) -> dict:
    """Loss and accuracy of the classifier's head on extracted features (multi-label: F1s and mAP)."""
    from sklearn.metrics import accuracy_score, log_loss

    if len(y) == 0:
        return {"n": 0}
    if classifier.multilabel:
        from imagefit.evaluate.multilabel_metrics import multilabel_scores

        return multilabel_scores(y, classifier.probabilities(features.vectors), classifier.thresholds)
    probs = classifier.probabilities(features.vectors).astype(np.float64)
    probs /= probs.sum(1, keepdims=True)
    labels = list(range(len(classifier.classes)))
    return {
        "n": len(y),
        "loss": float(log_loss(y, probs, labels=labels)),
        "accuracy": float(accuracy_score(y, probs.argmax(1))),
    }
