"""Blending overlapping windows: each pixel's class from the weighted mean of its windows' probabilities.

Windows of a network that sees context (a backbone's FCN-8s map, a segmentation decoder) overlap;
a pixel's class probabilities are the mean of those of every window holding it, weighted by a 2-D
raised cosine that falls towards each window's edges (where the network saw least around it), so
neighbouring windows hand over smoothly and no seam shows. The windows reach CONTEXT pixels beyond
the region (reflected beyond the raster), so border pixels are not at a window's edge either.
Rows of the map are finished as soon as no later window holds them: memory follows a row of windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from imagefit.errors import OptionError
from imagefit.maps.outputs.theme_map import CONFIDENCE_NODATA, NODATA, UNSURE, confidence_bytes

OVERLAP = 96  # pixels shared by neighbouring windows (at least)
CONTEXT = 32  # pixels beyond the region's edges that windows cover
ALIGN = 32  # window sides are multiples of this where they can be (the networks' stride)
EDGE_WEIGHT = 0.02  # weight of a window's outermost pixels relative to its centre


def blended_map(
    engine, read: Callable, region, patch: int, window: int, min_confidence: float | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Class indices (rows, cols) of `region`, their confidence bytes and the number of windows,
    blended from `engine`'s; UNSURE where the top probability is below `min_confidence`.

    `read(top, left, height, width)` gives a normalised window in raster coordinates; `engine` its
    logits (classes, height - patch + 1, width - patch + 1), one per patch centred at each pixel.
    """
    index = np.full((region.height, region.width), NODATA, np.int16)
    confidence = np.full((region.height, region.width), CONFIDENCE_NODATA, np.uint8)
    n = 0
    for n, lo, probs in blended_rows(engine, read, region, patch, window):  # noqa: B007 (n: read after)
        rows = slice(lo, lo + probs.shape[1])
        top = probs.max(0)
        index[rows] = probs.argmax(0)
        if min_confidence is not None:
            index[rows][top < min_confidence] = UNSURE
        confidence[rows] = confidence_bytes(top)
    return index, confidence, n


def blended_rows(engine, read: Callable, region, patch: int, window: int, probabilities: bool = True):
    """(windows so far, first row, probabilities (classes, rows, cols)) of rows as they are finished;
    without `probabilities`, the windows' logits blended instead (what calibration is fitted on)."""
    c, out = patch // 2, window - patch + 1
    if out <= OVERLAP:
        raise OptionError(f"window {window} is too small to blend: use at least {OVERLAP + patch + ALIGN}")
    rows, rside = window_starts(region.height, out)
    cols, cside = window_starts(region.width, out)
    wr, wc = window_weight(rside), window_weight(cside)
    height, width = region.height, region.width
    acc = total = None
    base = 0  # acc and total hold the map's rows base, base + 1, ...
    for k, top in enumerate(rows):
        lo, hi = max(top, 0), min(top + rside, height)
        for left in cols:
            x = read(region.row + top - c, region.col + left - c, rside + patch - 1, cside + patch - 1)
            probs = softmax(engine(x)) if probabilities else engine(x)
            if acc is None:
                acc, total = np.zeros((len(probs), 0, width), np.float32), np.zeros((0, width), np.float32)
            if hi - base > total.shape[0]:
                grow = hi - base - total.shape[0]
                acc = np.concatenate([acc, np.zeros((len(acc), grow, width), np.float32)], axis=1)
                total = np.concatenate([total, np.zeros((grow, width), np.float32)])
            cl, ch = max(left, 0), min(left + cside, width)
            w = wr[lo - top : hi - top, None] * wc[None, cl - left : ch - left]
            acc[:, lo - base : hi - base, cl:ch] += probs[:, lo - top : hi - top, cl - left : ch - left] * w
            total[lo - base : hi - base, cl:ch] += w
        done = max(rows[k + 1], 0) if k + 1 < len(rows) else height
        if done > base:  # no later window reaches above `done`: these rows are final
            yield (k + 1) * len(cols), base, acc[:, : done - base] / total[: done - base]
            acc, total, base = acc[:, done - base :], total[done - base :], done


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (classes, rows, cols) from logits."""
    e = np.exp(logits - logits.max(0, keepdims=True))
    return e / e.sum(0, keepdims=True)


def window_starts(
    length: int, window: int, overlap: int = OVERLAP, context: int = CONTEXT
) -> tuple[list[int], int]:
    """Where windows of output start along an axis of `length` pixels, and their common side.

    The windows cover `context` pixels beyond each end, neighbours share at least `overlap`, and
    their side (at most `window`, a multiple of ALIGN where it can be) is the least that does it.
    """
    span = length + 2 * context
    if window <= overlap:
        raise OptionError(f"window {window} must be larger than the overlap of {overlap} pixels")
    n = max(1, math.ceil((span - overlap) / (window - overlap)))
    side = min(window, -(-(span + (n - 1) * overlap) // n) // -ALIGN * -ALIGN)
    side = min(side, span) if n == 1 else side
    if n == 1:
        return [-context], side
    stride = (span - side) / (n - 1)
    return [-context + round(k * stride) for k in range(n)], side


def window_weight(side: int) -> np.ndarray:
    """A 1-D raised cosine over a window's pixels: 1 at the centre, EDGE_WEIGHT at the ends."""
    t = (np.arange(side, dtype=np.float32) + 0.5) / side
    return EDGE_WEIGHT + (1 - EDGE_WEIGHT) * np.sin(np.pi * t) ** 2
