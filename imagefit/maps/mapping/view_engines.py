"""Engines made of another engine, in NumPy: test-time symmetries and a calibration temperature."""

from __future__ import annotations

import numpy as np

from imagefit.errors import OptionError
from imagefit.maps.mapping.blend import softmax
from imagefit.maps.mapping.symmetries import dihedral, undo_dihedral

AXES = (-2, -1)  # a window's rows and columns


class DihedralEngine:
    """Test-time augmentation of a per-pixel engine (a decoder): each window is mapped in the 8
    symmetries of the square (the views training drew), each view's class probabilities turned
    back, and their mean returned as log-probabilities. 8 times the work of one view."""

    def __init__(self, engine):
        if engine.reduction != 1 or engine.margin or engine.exact:
            raise OptionError("--tta applies to decoders (a class for every pixel), not patch classifiers")
        self.engine = engine
        self.exact, self.margin, self.reduction = engine.exact, engine.margin, engine.reduction

    def __call__(self, x: np.ndarray) -> np.ndarray:
        total = None
        for k in range(8):
            view = np.ascontiguousarray(dihedral(x, k, AXES))
            p = undo_dihedral(softmax(self.engine(view)), k, AXES)
            total = p if total is None else total + p
        return np.log(np.maximum(total / 8, 1e-12)).astype(np.float32)


class TemperatureEngine:
    """An engine's logits divided by a run's calibration temperature: the same classes, calibrated
    probabilities after the softmax."""

    def __init__(self, engine, temperature: float):
        self.engine, self.temperature = engine, np.float32(temperature)
        self.exact, self.margin, self.reduction = engine.exact, engine.margin, engine.reduction

    def __call__(self, x: np.ndarray) -> np.ndarray:
        logits = self.engine(x)  # a new array (engines return one): divided in place
        logits /= self.temperature
        return logits


def with_views(engine, tta: bool = False, temperature: float | None = None):
    """`engine` with its logits divided by a calibration `temperature` (None or 1: as they are), and
    with `tta` mapping each window in the 8 symmetries (each view calibrated before its softmax)."""
    if temperature is not None and temperature != 1:
        engine = TemperatureEngine(engine, temperature)
    return DihedralEngine(engine) if tta else engine
