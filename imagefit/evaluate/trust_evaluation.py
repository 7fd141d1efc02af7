"""What an evaluation says about trusting a run: its calibration, its accuracy when it may abstain,
and, given a folder of images of no training class, how well its familiarity tells them apart."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imagefit.data.images import list_images
from imagefit.errors import DataError, OptionError
from imagefit.evaluate.trust_figures import coverage_figure, familiarity_figure, reliability_figure
from imagefit.evaluate.trust_metrics import calibration_errors, coverage_curve, uncalibrated, unknown_metrics
from imagefit.inference.calibration import reliability
from imagefit.inference.predictions import Predictions

RELIABILITY = "reliability.png"
COVERAGE = "coverage.png"
FAMILIARITY = "familiarity.png"


def trust_evaluation(
    preds: Predictions, y_true: np.ndarray, out: str | os.PathLike, temperature: float | None = None
) -> dict:
    """ECE with and without the run's temperature, the share of known images called unknown, and the
    reliability and coverage figures, written into `out`."""
    out = Path(out)
    probs = np.asarray(preds.probabilities, np.float64)
    record = calibration_errors(probs, y_true, temperature)
    if temperature is None:
        panels = {"as predicted (no calibration)": reliability(probs, y_true)}
    else:
        before = reliability(uncalibrated(probs, temperature), y_true)
        panels = {
            "before calibration": before,
            f"calibrated (T = {temperature:.3g})": reliability(probs, y_true),
        }
    reliability_figure(panels, out / RELIABILITY)
    if preds.familiarity is not None:
        scores, by = preds.familiarity, "familiarity"
        record["known_unknown_share"] = float(np.mean(preds.unknown))
    else:
        scores, by = probs.max(1), "calibrated top probability"
    coverage, accuracy = coverage_curve(scores, probs.argmax(1) == np.asarray(y_true))
    coverage_figure(coverage, accuracy, by, out / COVERAGE)
    record.update(reliability_figure=RELIABILITY, coverage_figure=COVERAGE, coverage_by=by)
    return record


def unknown_images(classifier, folder: str | os.PathLike, run: str | os.PathLike) -> list[Path]:
    """The images under `folder` (recursively), once the run is known to judge familiarity."""
    if getattr(classifier, "familiarity", None) is None:
        raise OptionError(
            f"{run} was trained without a familiarity, so it cannot tell unknown images: "
            "retrain it (imagefit train) to use --unknown"
        )
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"--unknown {folder} {what}: give a folder of images of no training class")
    found = list_images(folder)
    if not found:
        raise DataError(f"--unknown {folder} holds no image files (.jpg, .png, ...)")
    return found


def unknown_evaluation(
    known: Predictions,
    unknown: Predictions,
    threshold: float,
    folder: str | os.PathLike,
    out: str | os.PathLike,
) -> dict:
    """AUROC and FPR at 95 % TPR of familiarity, known against unknown, the share of unknown images
    the run calls unknown, and the histograms of both, written into `out`."""
    if not unknown.paths:
        raise DataError(f"--unknown {folder}: none of its {len(unknown.errors)} image files could be read")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = unknown_metrics(known.familiarity, unknown.familiarity, unknown.unknown)
    familiarity_figure(known.familiarity, unknown.familiarity, threshold, out / FAMILIARITY)
    record.update(
        unknown=str(folder),
        familiarity_threshold=float(threshold),
        familiarity_figure=FAMILIARITY,
        unknown_skipped=[{"path": str(p), "reason": r} for p, r in unknown.errors],
    )
    return record
