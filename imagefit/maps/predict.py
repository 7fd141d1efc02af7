"""Theme maps of whole tiles: windows read one at a time, logits per window, blocks stitched seamlessly.

The patch positions of a tile are cut into square blocks. Each block's window of pixels (the block
plus a patch's extent, plus the engine's margin of context) is read from the file, its logits
computed, and the block's classes written at the patch centres. A small CNN's dense logits at a
position depend on that patch's pixels only, so blocks meet without seams: any window size gives
the same map. Pixels that no full patch has at its centre (a border of about half a patch) are
no-data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagefit.errors import DataError, OptionError
from imagefit.maps.rasters import RasterInfo, raster_info, read_image, read_valid
from imagefit.maps.tiles import Roi

NODATA = -1  # class index of pixels without a prediction
DEFAULT_WINDOW = 1024


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


def region_of(info: RasterInfo, roi: Roi | None, patch: int) -> Region:
    """The region to map (the whole raster, or a ROI inside it), checked to hold a patch."""
    region = Region(0, 0, info.height, info.width)
    if roi is not None:
        (x0, y0), (x1, y1) = roi
        if not (0 <= x0 < x1 <= info.width and 0 <= y0 < y1 <= info.height):
            raise DataError(
                f"ROI ({x0},{y0})-({x1},{y1}) is not inside {info.path} ({info.width}x{info.height} pixels)"
            )
        region = Region(y0, x0, y1 - y0, x1 - x0)
    if patch > min(region.height, region.width):
        raise DataError(
            f"patch size {patch} is larger than {info.path} or its ROI "
            f"({region.width}x{region.height} pixels)"
        )
    return region


def blocks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, end) ranges of at most `size` covering 0..n."""
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def iter_logits(
    engine, path: str | Path, region: Region, patch: int, mean, std, window: int = DEFAULT_WINDOW,
    bands: list[int] | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:  # fmt: skip
    """(row, col, logits) of each block of patch positions of the region, row and col relative to it."""
    margin, step = engine.margin, engine.reduction
    side = (window - (patch - 1) - 2 * margin) // step * step
    if side < step:
        raise OptionError(
            f"window {window} is too small for patches of {patch}: use at least {patch + 2 * margin + step}"
        )
    rows, cols = region.height - patch + 1, region.width - patch + 1
    m = np.asarray(mean, np.float32).reshape(-1, 1, 1) * 255
    s = np.asarray(std, np.float32).reshape(-1, 1, 1) * 255
    for r0, r1 in blocks(rows, side):
        for c0, c1 in blocks(cols, side):
            top, left = max(r0 - margin, 0), max(c0 - margin, 0)
            bottom, right = (
                min(r1 + patch - 1 + margin, region.height),
                min(c1 + patch - 1 + margin, region.width),
            )
            box = (region.row + top, region.col + left, bottom - top, right - left)
            pixels, _ = read_image(path, box, bands)
            x = ((pixels.transpose(2, 0, 1).astype(np.float32) - m) / s)[None]
            logits = engine(np.ascontiguousarray(x))
            yield r0, c0, logits[:, r0 - top : r1 - top, c0 - left : c1 - left]


def map_region(
    engine, path: str | Path, patch: int, mean, std, roi: Roi | None = None, window: int = DEFAULT_WINDOW,
    bands: list[int] | None = None,
) -> ThemeMap:  # fmt: skip
    """The class of every pixel of a raster (or ROI) at which a full patch is centred; NODATA elsewhere
    and where the raster's nodata or mask says a pixel is not valid."""
    info = raster_info(path)
    region = region_of(info, roi, patch)
    index = np.full((region.height, region.width), NODATA, np.int16)
    c = patch // 2
    started, n = time.perf_counter(), 0
    for r0, c0, logits in iter_logits(engine, path, region, patch, mean, std, window, bands):
        h, w = logits.shape[1:]
        index[r0 + c : r0 + c + h, c0 + c : c0 + c + w] = logits.argmax(0)
        n += 1
    valid = read_valid(path, (region.row, region.col, region.height, region.width), bands)
    if valid is not None:
        index[~valid] = NODATA
    return ThemeMap(index, info, region, time.perf_counter() - started, n)


def logits_of_region(
    engine, path: str | Path, patch: int, mean, std, roi: Roi | None = None, window: int = DEFAULT_WINDOW,
    bands: list[int] | None = None,
) -> np.ndarray:  # fmt: skip
    """All logits (classes, rows - P + 1, cols - P + 1) of a raster or ROI, stitched (small regions)."""
    region = region_of(raster_info(path), roi, patch)
    out = None
    for r0, c0, logits in iter_logits(engine, path, region, patch, mean, std, window, bands):
        if out is None:
            out = np.zeros((logits.shape[0], region.height - patch + 1, region.width - patch + 1), np.float32)
        out[:, r0 : r0 + logits.shape[1], c0 : c0 + logits.shape[2]] = logits
    return out
