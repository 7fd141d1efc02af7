"""Theme maps of whole rasters: every pixel mapped, window by window, without seams.

Every pixel of the region gets a class: beyond the raster's edges the image is continued by
reflection (as segmentation models pad), so a pixel near the border is mapped from a whole patch
(or window) too. Windows are read one at a time, so memory follows the window, not the raster.

- Exact engines (a small CNN, dense or patch by patch): a pixel's logits depend on its patch
  alone, so blocks of pixels are stitched as they come and any window size gives the same map.
- Other engines (a backbone's FCN-8s map, a segmentation decoder) see the context around a pixel:
  windows overlap, and each pixel's class probabilities are blended from every window that holds
  it, weighted by a 2-D raised cosine that falls towards the window's edges (where context is
  missing), so the map shows no seam where windows meet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.errors import DataError, OptionError
from imagefit.maps.inputs.rasters import RasterInfo, raster_info, read_image, read_valid
from imagefit.maps.inputs.tileset import Roi
from imagefit.maps.mapping.blend import blended_blocks
from imagefit.maps.mapping.defaults import DEFAULT_WINDOW
from imagefit.maps.outputs.theme_map import (
    CONFIDENCE_NODATA,
    NODATA,
    UNSURE,
    Region,
    ThemeMap,
    confidence_bytes,
)


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


class WindowReader:
    """Normalised windows (1, bands, h, w) of a raster at any position, reflected beyond its edges."""

    def __init__(self, path: str | Path, info: RasterInfo, mean, std, bands: list[int] | None = None):
        self.path, self.info, self.bands = path, info, bands
        self.mean = np.asarray(mean, np.float32).reshape(-1, 1, 1) * 255
        self.std = np.asarray(std, np.float32).reshape(-1, 1, 1) * 255

    def __call__(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """The window whose top-left pixel is (top, left) in raster coordinates."""
        h, w = self.info.height, self.info.width
        r0, c0 = min(max(top, 0), h - 1), min(max(left, 0), w - 1)
        r1, c1 = max(min(top + height, h), r0 + 1), max(min(left + width, w), c0 + 1)
        pixels, _ = read_image(self.path, (r0, c0, r1 - r0, c1 - c0), self.bands)
        pad = ((r0 - top, top + height - r1), (c0 - left, left + width - c1), (0, 0))
        if any(p for axis in pad for p in axis):
            pixels = np.pad(pixels, pad, mode="reflect" if min(pixels.shape[:2]) > 1 else "edge")
        x = np.empty((1, pixels.shape[2], height, width), np.float32)
        x[0] = pixels.transpose(2, 0, 1)
        x[0] -= self.mean
        x[0] /= self.std
        return x


def iter_logits(
    engine, path: str | Path, region: Region, patch: int, mean, std, window: int = DEFAULT_WINDOW,
    pad: bool = True, bands: list[int] | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:  # fmt: skip
    """(row, col, logits) of each block of positions of the region, row and col relative to it.

    With `pad` there is a position for every pixel (the patch centred on it, reflected beyond the
    raster's edges); without, one for every patch that fits in the region (its top-left corner).
    """
    margin, step = engine.margin, engine.reduction
    side = (window - (patch - 1) - 2 * margin) // step * step
    if side < step:
        raise OptionError(
            f"window {window} is too small for patches of {patch}: use at least {patch + 2 * margin + step}"
        )
    c = patch // 2 if pad else 0
    rows, cols = (
        (region.height, region.width) if pad else (region.height - patch + 1, region.width - patch + 1)
    )
    read = WindowReader(path, raster_info(path), mean, std, bands)
    for r0, c0 in ((r0, c0) for r0, _ in blocks(rows, side) for c0, _ in blocks(cols, side)):
        r1, c1 = min(r0 + side, rows), min(c0 + side, cols)
        top, left = r0 - c - margin, c0 - c - margin
        x = read(
            region.row + top,
            region.col + left,
            r1 - r0 + patch - 1 + 2 * margin,
            c1 - c0 + patch - 1 + 2 * margin,
        )
        logits = engine(x)
        yield r0, c0, logits[:, margin : margin + r1 - r0, margin : margin + c1 - c0]


@dataclass
class MapBlock:
    """A finished block of a map: class indices (NODATA where the raster has no data, UNSURE where too
    unsure) and confidence bytes, at (row, col) of the region; `windows`: the engine's calls so far."""

    row: int
    col: int
    index: np.ndarray  # (rows, cols) int16
    confidence: np.ndarray  # (rows, cols) uint8
    windows: int


def map_blocks(
    engine, path: str | Path, region: Region, patch: int, mean, std, window: int = DEFAULT_WINDOW,
    bands: list[int] | None = None, min_confidence: float | None = None,
) -> Iterator[MapBlock]:  # fmt: skip
    """The map of a region of a raster, block by block as windows finish: stitched from an exact
    engine's blocks, or blended from another's overlapping windows."""
    if getattr(engine, "exact", True):
        for n, (r0, c0, logits) in enumerate(
            iter_logits(engine, path, region, patch, mean, std, window, bands=bands), 1
        ):
            top = 1 / np.exp(logits - logits.max(0, keepdims=True)).sum(0)  # the softmax's largest value
            yield _block(path, region, bands, r0, c0, logits.argmax(0), top, min_confidence, n)
    else:
        read = WindowReader(path, raster_info(path), mean, std, bands)
        for n, r0, c0, probs in blended_blocks(engine, read, region, patch, window):
            yield _block(path, region, bands, r0, c0, probs.argmax(0), probs.max(0), min_confidence, n)


def _block(path, region: Region, bands, r0: int, c0: int, index, top, min_confidence, n: int) -> MapBlock:
    """A block's classes and confidence, with its unsure and no-data pixels marked."""
    index = index.astype(np.int16)
    if min_confidence is not None:
        index[top < min_confidence] = UNSURE
    confidence = confidence_bytes(top)
    valid = read_valid(path, (region.row + r0, region.col + c0, *index.shape), bands)
    if valid is not None:
        index[~valid] = NODATA
        confidence[~valid] = CONFIDENCE_NODATA
    return MapBlock(r0, c0, index, confidence, n)


def map_region(
    engine, path: str | Path, patch: int, mean, std, roi: Roi | None = None, window: int = DEFAULT_WINDOW,
    bands: list[int] | None = None, min_confidence: float | None = None,
) -> ThemeMap:  # fmt: skip
    """The class of every pixel of a raster (or ROI) held in memory, and its confidence (for small
    regions: a validation tile's; `imagefit map` streams instead); NODATA where the raster's nodata or
    mask says a pixel is not valid, UNSURE where the top class probability is below `min_confidence`."""
    info = raster_info(path)
    region = region_of(info, roi, patch)
    started = time.perf_counter()
    index = np.full((region.height, region.width), NODATA, np.int16)
    confidence = np.full((region.height, region.width), CONFIDENCE_NODATA, np.uint8)
    n = 0
    for block in map_blocks(engine, path, region, patch, mean, std, window, bands, min_confidence):
        at = (
            slice(block.row, block.row + block.index.shape[0]),
            slice(block.col, block.col + block.index.shape[1]),
        )
        index[at], confidence[at], n = block.index, block.confidence, block.windows
    seconds = time.perf_counter() - started
    return ThemeMap(index, info, region, seconds, n, confidence=confidence, min_confidence=min_confidence)


def region_logits(
    engine, path: str | Path, patch: int, mean, std, roi: Roi | None = None, window: int = DEFAULT_WINDOW,
    bands: list[int] | None = None,
) -> np.ndarray:  # fmt: skip
    """The logits (classes, rows, cols) that mapping the raster (or ROI) takes its classes from:
    an exact engine's stitched, another's blended as its probabilities are."""
    region = region_of(raster_info(path), roi, patch)
    if getattr(engine, "exact", True):
        parts = iter_logits(engine, path, region, patch, mean, std, window, bands=bands)
    else:
        read = WindowReader(path, raster_info(path), mean, std, bands)
        parts = ((r0, c0, v) for _, r0, c0, v in blended_blocks(engine, read, region, patch, window, False))
    out = None
    for r0, c0, logits in parts:
        if out is None:
            out = np.zeros((len(logits), region.height, region.width), np.float32)
        out[:, r0 : r0 + logits.shape[1], c0 : c0 + logits.shape[2]] = logits
    return out
