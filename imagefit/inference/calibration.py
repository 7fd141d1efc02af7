"""Post-hoc calibration of a classifier's logits, fitted on the validation images after training.

A softmax head gets one temperature (Guo et al. 2017): logits / T, which keeps every argmax. A
sigmoid (multi-label) head gets a scale and a shift per label (Platt scaling), each label's order of
images kept. `expected_calibration_error` is the 15-bin top-label ECE that the evaluation reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ECE_BINS = 15
_LOG_T_BOUNDS = (-1.4, 3.0)  # temperatures between 0.25 and 20


@dataclass
class Calibration:
    """How to turn a head's logits into calibrated ones: a temperature, or a scale and shift per label."""

    temperature: float = 1.0
    scales: list[float] | None = None  # multi-label: per label, logit * scale + shift
    shifts: list[float] | None = None

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """The calibrated logits, (n, classes) as given."""
        if self.scales is not None:
            return logits * np.asarray(self.scales, logits.dtype) + np.asarray(self.shifts, logits.dtype)
        return logits / np.asarray(self.temperature, logits.dtype)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, record: dict | None) -> Calibration | None:
        """The calibration saved in a run's config, or None for a run saved without one."""
        if not record:
            return None
        return cls(float(record.get("temperature", 1.0)), record.get("scales"), record.get("shifts"))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> Calibration:
    """The temperature that minimises the log loss of softmax(logits / T) on labels `y`."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, np.float64)
    y = np.asarray(y, np.int64)

    def loss(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        scaled -= scaled.max(1, keepdims=True)
        log_probs = scaled - np.log(np.exp(scaled).sum(1, keepdims=True))
        return float(-log_probs[np.arange(len(y)), y].mean())

    best = minimize_scalar(loss, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    t = float(np.exp(best.x))
    if (z.argmax(1) == y).all():  # separable: the log loss only falls with sharper logits, no evidence
        t = max(t, 1.0)
    return Calibration(temperature=t)


def fit_label_scaling(logits: np.ndarray, targets: np.ndarray) -> Calibration:
    """A scale and shift per label minimising that label's binary log loss (Platt scaling); a label
    with one outcome only on the validation images keeps its logits."""
    from sklearn.linear_model import LogisticRegression

    z = np.asarray(logits, np.float64)
    scales, shifts = [], []
    for j in range(z.shape[1]):
        t = np.asarray(targets[:, j], np.int64)
        if t.min() == t.max():
            scales.append(1.0)
            shifts.append(0.0)
            continue
        fit = LogisticRegression(C=1e4).fit(z[:, j : j + 1], t)
        scales.append(max(float(fit.coef_[0, 0]), 1e-3))  # never reverse a label's order of images
        shifts.append(float(fit.intercept_[0]))
    return Calibration(scales=scales, shifts=shifts)


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: the gap between confidence and accuracy in equal-width bins, weighted by count."""
    rows = reliability(probs, y, bins)
    gap = sum(r["n"] * abs(r["confidence"] - r["accuracy"]) for r in rows if r["n"])
    return float(gap / max(len(probs), 1))


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per confidence bin: its range, image count, mean confidence and accuracy (a reliability diagram)."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "n": n,
                "confidence": float(confidence[inside].mean()) if n else None,
                "accuracy": float(correct[inside].mean()) if n else None,
            }
        )
    return rows
