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


def image_bands(path: str | Path, bands: tuple[int, ...] | list[int] | None = None) -> list[int]:
    """The 1-based bands of an image that `bands` selects (None: every band but alpha), checked."""
    with open_raster(path) as ds:
        return _select(ds, bands)


def check_bands(path: str | Path, bands: tuple[int, ...] | list[int] | None, expected: int) -> list[int]:
    """The bands of an image a model reads, checked to be as many as it was trained on."""
    chosen = image_bands(path, bands)
    if len(chosen) != expected:
        which = f"bands {','.join(map(str, bands))}" if bands else "all its bands"
        raise DataError(
            f"{path}: {len(chosen)} band(s) ({which}) but the model was trained on {expected}: "
            "map images with the bands it was trained on"
        )
    return chosen


def _select(ds, bands) -> list[int]:
    if bands is None:
        chosen = [b for b in ds.indexes if not is_alpha_mask(ds, b)]
        return chosen or list(ds.indexes)
    bad = [b for b in bands if not 1 <= b <= ds.count]
    if bad:
        raise DataError(f"{ds.name}: band {bad[0]} is out of range: it has bands 1 to {ds.count}")
    return list(bands)


def is_alpha_mask(ds, band: int) -> bool:
    """Whether a band is the alpha band that masks the others (not when a nodata value masks them:
    GDAL marks the 4th band of any 4-band 8-bit GeoTIFF alpha, RGB + near infrared ones too)."""
    from rasterio.enums import ColorInterp, MaskFlags

    return ds.colorinterp[band - 1] == ColorInterp.alpha and MaskFlags.alpha in ds.mask_flag_enums[0]


def read_image(
    path: str | Path, window: Window | None = None, bands: tuple[int, ...] | list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (rows, cols, B) uint8 of `bands` (None: all but alpha) of a window (None: all), and
    where they are valid (rows, cols) bool: False where the raster's nodata, mask or alpha says so."""
    with open_raster(path) as ds:
        chosen = _select(ds, bands)
        if ds.dtypes[0] != "uint8":
            raise DataError(f"{path} has {ds.dtypes[0]} pixels: imagefit maps 8-bit images")
        w = rio_window(window)
        data = ds.read(chosen, window=w)
        valid = _valid(ds, chosen, w, data.shape[1:])
    return np.ascontiguousarray(data.transpose(1, 2, 0)), valid


def read_valid(
    path: str | Path, window: Window | None = None, bands: tuple[int, ...] | list[int] | None = None
) -> np.ndarray | None:
    """Where a window of `bands` of a raster is valid (rows, cols) bool, or None when every pixel is."""
    with open_raster(path) as ds:
        shape = (ds.height, ds.width) if window is None else window[2:]
        valid = _valid(ds, _select(ds, bands), rio_window(window), shape)
    return None if valid.all() else valid


def _valid(ds, bands: list[int], window, shape) -> np.ndarray:
    """Valid pixels: every chosen band's mask set (masks are read only when some may be unset)."""
    from rasterio.enums import MaskFlags
    from rasterio.errors import NodataShadowWarning

    if all(ds.mask_flag_enums[b - 1] == [MaskFlags.all_valid] for b in bands):
        return np.ones(shape, bool)
    with warnings.catch_warnings():  # nodata masks the bands, not the alpha band: as wanted
        warnings.simplefilter("ignore", NodataShadowWarning)
        return (ds.read_masks(bands, window=window) > 0).all(0)


def rio_window(window: Window | None):
    """A rasterio Window of a (row, col, height, width) window (None stays None)."""
    if window is None:
        return None
    from rasterio.windows import Window as RioWindow

    row, col, height, width = window
    return RioWindow(col, row, width, height)
