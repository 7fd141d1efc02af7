"""What a run learns about its own reliability after training, on its validation images.

`fit_trust` calibrates the classifier (the temperature or per-label scaling is folded into its
classifier layer, so every engine, export and server gives the calibrated probabilities without
knowing) and fits its familiarity (training features, the validation images' signals, the
threshold under which an image is unknown).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from imagefit.inference.calibration import (
    Calibration,
    expected_calibration_error,
    fit_label_scaling,
    fit_temperature,
)
from imagefit.inference.familiarity import DEFAULT_COMBINATION, DEFAULT_RECALL, Familiarity

log = logging.getLogger(__name__)

MAX_REFERENCE = 20_000  # training images kept for the nearest-neighbour signal (a seeded sample beyond)


@dataclass
class Trust:
    """The calibration folded into a classifier, its familiarity, and what they measured."""

    calibration: Calibration | None
    familiarity: Familiarity | None
    metrics: dict


def fit_trust(
    classifier,
    train_paths: list,
    valid_paths: list,
    valid_targets_of,
    extract_options: dict,
    calibrate: bool = True,
    recall: float = DEFAULT_RECALL,
    seed: int = 0,
) -> Trust:
    """Calibrate `classifier` in place on the validation images and fit its familiarity.

    `valid_targets_of(features)` gives the validation images' class indices (multi-label: 0/1 rows)
    for the images that decoded. Without validation images, nothing is fitted.
    """
    extractor = classifier.extractor(**extract_options)
    valid = extractor(valid_paths, desc="valid (calibration)")
    if len(valid.vectors) < 2:
        log.warning("too few validation images to calibrate or to judge unknown images: skipped")
        return Trust(None, None, {})
    targets = valid_targets_of(valid)
    logits = classifier.logits(valid.vectors)
    metrics = {}
    calibration = None
    if calibrate and _foldable(classifier):
        calibration = _fit(classifier, logits, targets)
        metrics = _calibration_metrics(classifier, logits, targets, calibration)
        fold_calibration(classifier, calibration)
    reference = _reference_paths(train_paths, seed)
    train = extractor(reference, desc="train (familiarity)")
    probs = classifier.probabilities(valid.vectors)
    # multi-label: an image is unknown when every label is far below its threshold *and* its features are
    # far from the training images' (an image of none of the labels can be a known one)
    how = "max" if classifier.multilabel else DEFAULT_COMBINATION
    familiarity = Familiarity.fit(train.vectors, valid.vectors, probs, recall, how=how)
    classifier.familiarity = familiarity
    scores = familiarity.scores(valid.vectors, probs)
    metrics["valid_unknown_share"] = float(familiarity.unknown(scores).mean())
    metrics["familiarity_threshold"] = familiarity.threshold
    return Trust(calibration, familiarity, metrics)


def _fit(classifier, logits: np.ndarray, targets: np.ndarray) -> Calibration:
    if classifier.multilabel:
        return fit_label_scaling(logits, targets)
    return fit_temperature(logits, targets)


def _calibration_metrics(classifier, logits, targets, calibration: Calibration) -> dict:
    """ECE before and after on the validation images (single-label), and the calibration itself."""
    out = {"calibration": calibration.to_dict()}
    if not classifier.multilabel:
        before = torch.from_numpy(logits).softmax(-1).numpy()
        after = torch.from_numpy(calibration.apply(logits)).softmax(-1).numpy()
        out["ece_uncalibrated"] = expected_calibration_error(before, targets)
        out["ece"] = expected_calibration_error(after, targets)
    return out


def _foldable(classifier) -> bool:
    head = classifier.model.get_classifier()
    if isinstance(head, torch.nn.Linear):
        return True
    log.warning("the classifier layer is %s, not a linear layer: probabilities left uncalibrated", type(head))
    return False


@torch.no_grad()
def fold_calibration(classifier, calibration: Calibration) -> None:
    """Fold the calibration into the classifier layer (and move multi-label thresholds with it)."""
    head = classifier.model.get_classifier()
    if calibration.scales is None:
        head.weight /= calibration.temperature
        if head.bias is not None:
            head.bias /= calibration.temperature
    else:
        scale = torch.tensor(calibration.scales, dtype=head.weight.dtype, device=head.weight.device)
        shift = torch.tensor(calibration.shifts, dtype=head.weight.dtype, device=head.weight.device)
        head.weight *= scale[:, None]
        bias = head.bias if head.bias is not None else torch.zeros_like(shift)
        head.bias = torch.nn.Parameter(bias * scale + shift)
        t = np.clip(classifier.thresholds.astype(np.float64), 1e-6, 1 - 1e-6)
        moved = calibration.apply(np.log(t / (1 - t))[None, :])[0]
        classifier.thresholds = (1 / (1 + np.exp(-moved))).astype(np.float32)
    classifier.weights_changed()


def _reference_paths(paths: list, seed: int) -> list:
    if len(paths) <= MAX_REFERENCE:
        return list(paths)
    keep = np.sort(np.random.default_rng(seed).choice(len(paths), MAX_REFERENCE, replace=False))
    return [paths[i] for i in keep]
