"""A theme map as every output is written from it: class indices of a region of a raster."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imagefit.maps.inputs.rasters import RasterInfo

NODATA = -1  # class index of pixels without a prediction


@dataclass
class Region:
    """The part of a raster being mapped: (row, col) offset and size."""

    row: int
    col: int
    height: int
    width: int


@dataclass
class ThemeMap:
    """Class indices (NODATA where none) of a region of a raster, with where they came from."""

    index: np.ndarray  # (rows, cols) int16
    source: RasterInfo
    region: Region
    seconds: float = 0.0
    windows: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def mapped(self) -> int:
        return int((self.index >= 0).sum())
