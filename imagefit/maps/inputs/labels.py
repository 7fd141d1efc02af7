"""Label rasters read as class indices: values (8/16 bit, or bands all equal) or colours (RGB, palette)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagefit.errors import DataError
from imagefit.maps.inputs.colours import palette_rgb
from imagefit.maps.inputs.key import IGNORED, ThemeKey
from imagefit.maps.inputs.rasters import Window, is_alpha_mask, open_raster, rio_window


def read_labels(path: str | Path, key: ThemeKey, window: Window | None = None) -> np.ndarray:
    """Class indices (rows, cols) int16 of a window of a label raster by `key`: IGNORED where the
    value (or colour) is ignored or the raster's nodata/mask says so; values outside the key raise."""
    from rasterio.enums import MaskFlags

    with open_raster(path) as ds:
        w = rio_window(window)
        raw = _colours(ds, w, path) if key.is_colour else _values(ds, w, path)
        valid = None
        if ds.mask_flag_enums[0] != [MaskFlags.all_valid]:
            valid = ds.read_masks(1, window=w) > 0
    if valid is not None:  # nodata pixels take a known label first, so that they never raise
        raw = raw if key.is_colour else raw.astype(np.int32)
        raw[~valid] = _known(key)
    index = key.encode_colours(raw, path) if key.is_colour else key.encode(raw, path)
    if valid is not None:
        index[~valid] = IGNORED
    return index


def _values(ds, window, path) -> np.ndarray:
    """Label values (rows, cols): the one band, or the first of several equal bands."""
    bands = [b for b in ds.indexes if not is_alpha_mask(ds, b)]
    data = ds.read(bands or [1], window=window)
    if len(data) > 1:
        differ = np.argwhere((data != data[:1]).any(0))
        if len(differ):
            r, c = differ[0]
            raise DataError(
                f"{path}: its bands differ (at row {r}, column {c}: {data[:, r, c].tolist()}), so it holds "
                "colours, not label values: give a key of `name<TAB>#RRGGBB` lines with --key"
            )
    return data[0]


def _colours(ds, window, path) -> np.ndarray:
    """RGB pixels (rows, cols, 3) of a colour mask: RGB(A) bands, or a palette band."""
    from rasterio.enums import ColorInterp

    if ds.colorinterp[0] == ColorInterp.palette:
        return palette_rgb(ds, ds.read(1, window=window))
    if ds.count < 3:
        raise DataError(
            f"{path} has {ds.count} band(s) and no palette: a colour key needs RGB or palette masks "
            "(for label values, give a key of `name<TAB>value` lines)"
        )
    if ds.dtypes[0] != "uint8":
        raise DataError(f"{path} has {ds.dtypes[0]} bands: colour masks are 8-bit RGB")
    return np.ascontiguousarray(ds.read([1, 2, 3], window=window).transpose(1, 2, 0))


def _known(key: ThemeKey):
    """A label (value, or colour as RGB) that the key knows, for pixels that are no data."""
    if key.is_colour:
        code = int(key.colours[0][1:], 16)
        return np.array([code >> 16, (code >> 8) & 255, code & 255], np.uint8)
    return key.values[0]
