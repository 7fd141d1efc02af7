"""A theme map as every output is written from it: class indices of a region of a raster, and how
sure the model was of each (its calibrated top class probability)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imagefit.maps.inputs.rasters import RasterInfo

NODATA = -1  # class index of pixels without a prediction
UNSURE = -2  # class index of pixels whose top class probability is below the map's min_confidence
CONFIDENCE_NODATA = 0  # confidence byte of pixels without data (a top probability is at least 1/classes)


@dataclass
class Region:
    """The part of a raster being mapped: (row, col) offset and size."""

    row: int
    col: int
    height: int
    width: int


@dataclass
class ThemeMap:
    """Class indices (NODATA where none, UNSURE where too unsure) of a region of a raster, with their
    confidence and where they came from."""

    index: np.ndarray  # (rows, cols) int16
    source: RasterInfo
    region: Region
    seconds: float = 0.0
    windows: int = 0
    extra: dict = field(default_factory=dict)
    confidence: np.ndarray | None = None  # (rows, cols) uint8: round(255 * top probability), 0: no data
    min_confidence: float | None = None  # pixels below it are UNSURE

    @property
    def mapped(self) -> int:
        return int((self.index >= 0).sum())

    @property
    def unsure(self) -> int:
        """Pixels left out of the map as below min_confidence."""
        return int((self.index == UNSURE).sum())


def confidence_bytes(top: np.ndarray) -> np.ndarray:
    """Top class probabilities as bytes round(255 * p), at least 1 (0 is the confidence's no-data)."""
    return np.maximum(np.rint(top * 255), 1).astype(np.uint8)
