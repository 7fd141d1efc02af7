"""A map run's calibration: one temperature fitted on the labelled pixels of its validation region.

The region is mapped as `imagefit map` maps it (the same engine, windows and blending), its logits
kept; a seeded sample of at most MAX_PIXELS labelled pixels fits the temperature that minimises
their log loss (`imagefit.inference.calibration.fit_temperature`). `imagefit map` divides the logits
by it before every softmax, so the confidence raster and --min-confidence read calibrated
probabilities; the classes are unchanged.
"""

from __future__ import annotations

import numpy as np

from imagefit.inference.calibration import Calibration, expected_calibration_error, fit_temperature
from imagefit.maps.inputs.tileset import Roi, TileSet
from imagefit.maps.mapping.blend import softmax
from imagefit.maps.mapping.region import region_logits
from imagefit.maps.mapping.window_engines import make_engine

MAX_PIXELS = 200_000  # labelled pixels of the validation region the temperature is fitted on


def calibrate_map(
    model, tiles: TileSet, ref: str, roi: Roi, patch: int, data_config: dict, seed: int = 0
) -> tuple[Calibration | None, dict]:
    """The temperature of `model` on the labelled pixels of tile `ref`'s ROI, and what it measured:
    temperature, ECE before and after, pixels. (None, {}) when the region has no labelled pixel."""
    engine = make_engine(model, patch, engine="torch")
    image = tiles.tile(ref).image
    logits = region_logits(
        engine, image, patch, data_config["mean"], data_config["std"], roi, bands=tiles.band_selection
    )
    _, labels = tiles.read(ref, roi)
    z, y = labelled_sample(logits, labels, MAX_PIXELS, seed)
    if len(y) == 0:
        return None, {}
    calibration = fit_temperature(z, y)
    return calibration, {
        "temperature": calibration.temperature,
        "ece_uncalibrated": expected_calibration_error(softmax(z.T).T, y),
        "ece": expected_calibration_error(softmax(calibration.apply(z).T).T, y),
        "pixels": len(y),
    }


def labelled_sample(logits: np.ndarray, labels: np.ndarray, limit: int, seed: int):
    """Logits (n, classes) and class indices (n,) of at most `limit` labelled pixels (labels >= 0),
    a seeded sample when there are more."""
    where = np.flatnonzero(labels.ravel() >= 0)
    if len(where) > limit:
        where = np.sort(np.random.default_rng(seed).choice(where, limit, replace=False))
    z = logits.reshape(len(logits), -1)[:, where].T
    return np.ascontiguousarray(z, np.float32), labels.ravel()[where].astype(np.int64)
