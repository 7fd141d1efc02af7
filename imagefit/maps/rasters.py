"""Reading rasters by window with rasterio: RGB images, label rasters, their size and georeferencing."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.errors import DataError

Window = tuple[int, int, int, int]  # row, col, height, width


@dataclass(frozen=True)
class RasterInfo:
    """Size, band count and georeferencing of a raster file."""

    path: Path
    height: int
    width: int
    count: int
    dtype: str
    crs: object | None  # rasterio CRS, None without georeferencing
    transform: object  # affine.Affine (identity without georeferencing)

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None


@contextmanager
def open_raster(path: str | Path):
    """A rasterio dataset for `path`; an unreadable file is a DataError naming it."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            dataset = rasterio.open(path)
        except RasterioIOError as exc:
            raise DataError(f"{path} is not a readable raster image: {exc}") from exc
        with dataset:
            yield dataset


def raster_info(path: str | Path) -> RasterInfo:
    """Size, bands and georeferencing of `path` without reading its pixels."""
    with open_raster(path) as ds:
        return RasterInfo(Path(path), ds.height, ds.width, ds.count, ds.dtypes[0], ds.crs, ds.transform)


def read_rgb(path: str | Path, window: Window | None = None) -> np.ndarray:
    """Pixels (rows, cols, 3) uint8 of a window (None: all) of an RGB, RGBA or grayscale raster."""
    with open_raster(path) as ds:
        bands = [1, 1, 1] if ds.count < 3 else [1, 2, 3]
        if ds.dtypes[0] != "uint8":
            raise DataError(f"{path} has {ds.dtypes[0]} pixels: imagefit maps 8-bit RGB images")
        data = ds.read(bands, window=_rio_window(window))
    return np.ascontiguousarray(data.transpose(1, 2, 0))


def read_band(path: str | Path, window: Window | None = None) -> np.ndarray:
    """The first band (rows, cols) of a window (None: all) of a raster, in its own integer type."""
    with open_raster(path) as ds:
        return ds.read(1, window=_rio_window(window))


def _rio_window(window: Window | None):
    if window is None:
        return None
    from rasterio.windows import Window as RioWindow

    row, col, height, width = window
    return RioWindow(col, row, width, height)
