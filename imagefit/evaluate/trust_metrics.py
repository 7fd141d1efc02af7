"""How far an evaluation can trust a run's probabilities and familiarity: numbers from arrays only.

Calibration is measured by the 15-bin top-label ECE, on the probabilities as predicted and on the
uncalibrated ones rebuilt from them (the run's temperature folded back out). Selective prediction
keeps the images a run is surest of first; unknown images are told from known ones by familiarity.
"""

from __future__ import annotations

import numpy as np

from imagefit.inference.calibration import expected_calibration_error

KNOWN_RECALL = 0.95  # the share of known images kept when counting the unknown ones let through


def uncalibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities before a temperature was folded in: softmax(log(probs) * T)."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), np.finfo(np.float64).tiny, None)) * temperature
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


def calibration_errors(probs: np.ndarray, y_true: np.ndarray, temperature: float | None) -> dict:
    """`ece` of the probabilities as predicted and `ece_uncalibrated` (the same without a temperature)."""
    ece = expected_calibration_error(np.asarray(probs, np.float64), y_true)
    before = (
        ece if temperature is None else expected_calibration_error(uncalibrated(probs, temperature), y_true)
    )
    return {"ece": ece, "ece_uncalibrated": before}


def coverage_curve(scores: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share kept, accuracy of the kept) when the images are kept from the highest score down."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    kept = np.arange(1, len(order) + 1)
    return kept / max(len(order), 1), np.cumsum(np.asarray(correct, np.float64)[order]) / kept


def ood_auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """The chance that a known image is more familiar than an unknown one (ties count half)."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    return float(roc_auc_score(truth, np.r_[known, unknown]))


def fpr_at_recall(known: np.ndarray, unknown: np.ndarray, recall: float = KNOWN_RECALL) -> float:
    """The share of unknown images at or above the familiarity that keeps `recall` of the known ones."""
    cut = np.quantile(np.asarray(known, np.float64), 1.0 - recall)
    return float((np.asarray(unknown) >= cut).mean())


def unknown_metrics(known: np.ndarray, unknown: np.ndarray, called_unknown: np.ndarray) -> dict:
    """AUROC, FPR at 95 % TPR, and the share of unknown images the run calls unknown itself."""
    return {
        "ood_auroc": ood_auroc(known, unknown),
        "ood_fpr_at_95tpr": fpr_at_recall(known, unknown),
        "ood_unknown_share": float(np.mean(called_unknown)),
        "n_unknown": len(unknown),
    }
