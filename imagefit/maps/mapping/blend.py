"""Blending overlapping windows: each pixel's class from the weighted mean of its windows' probabilities.

Windows of a network that sees context (a backbone's FCN-8s map, a segmentation decoder) overlap;
a pixel's class probabilities are the mean of those of every window holding it, weighted by a 2-D
raised cosine that falls towards each window's edges (where the network saw least around it), so
neighbouring windows hand over smoothly and no seam shows. The windows reach CONTEXT pixels beyond
the region (reflected beyond the raster), so border pixels are not at a window's edge either.
Blocks of the map are finished as soon as no later window holds them: memory follows a window and the
few rows neighbouring rows of windows share, never the raster.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from imagefit.errors import OptionError

OVERLAP = 96  # pixels shared by neighbouring windows (at least)
CONTEXT = 32  # pixels beyond the region's edges that windows cover
ALIGN = 32  # window sides are multiples of this where they can be (the networks' stride)
EDGE_WEIGHT = 0.02  # weight of a window's outermost pixels relative to its centre


def blended_blocks(engine, read: Callable, region, patch: int, window: int, probabilities: bool = True):
    """(windows so far, row, col, probabilities (classes, rows, cols)) of blocks of the region as they
    are finished; without `probabilities`, the windows' logits blended instead (what calibration is
    fitted on).

    `read(top, left, height, width)` gives a normalised window in raster coordinates; `engine` its
    logits (classes, height - patch + 1, width - patch + 1), one per patch centred at each pixel.
    The region's columns are cut where windows start and end; a piece of a row of windows is final
    once the next window of the row starts right of it, and only the rows the next row of windows
    shares are carried over: memory follows a window and those shared rows, not the raster.
    """
    c, out = patch // 2, window - patch + 1
    if out <= OVERLAP:
        raise OptionError(f"window {window} is too small to blend: use at least {OVERLAP + patch + ALIGN}")
    rows, rside = window_starts(region.height, out)
    cols, cside = window_starts(region.width, out)
    wr, wc = window_weight(rside), window_weight(cside)
    height, width = region.height, region.width
    pieces = _pieces(cols, cside, width)
    carry: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # piece -> its rows the next windows share
    base, n = 0, 0  # the rows not yet final start at base
    for k, top in enumerate(rows):
        lo, hi = max(top, 0), min(top + rside, height)
        done = max(rows[k + 1], 0) if k + 1 < len(rows) else height  # rows above are final after k
        band: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        emitted = 0
        for j, left in enumerate(cols):
            x = read(region.row + top - c, region.col + left - c, rside + patch - 1, cside + patch - 1)
            values = softmax(engine(x)) if probabilities else engine(x)
            n += 1
            w = wr[lo - top : hi - top, None] * wc[None, :]
            for i, (a, b) in enumerate(pieces):
                if a < left + cside and b > left:
                    if i not in band:
                        band[i] = _started(carry.pop(i, None), len(values), hi - base, b - a)
                    acc, total = band[i]
                    acc[:, lo - base : hi - base] += (
                        values[:, lo - top : hi - top, a - left : b - left] * w[:, a - left : b - left]
                    )
                    total[lo - base : hi - base] += w[:, a - left : b - left]
            limit = max(cols[j + 1], 0) if j + 1 < len(cols) else width
            while emitted < len(pieces) and pieces[emitted][1] <= limit:  # no later window reaches it
                acc, total = band.pop(emitted)
                if done > base:
                    yield n, base, pieces[emitted][0], acc[:, : done - base] / total[: done - base]
                carry[emitted] = (acc[:, done - base :].copy(), total[done - base :].copy())
                emitted += 1
        base = max(base, done)


def _pieces(cols: list[int], side: int, width: int) -> list[tuple[int, int]]:
    """The region's columns cut wherever a window starts or ends: [start, end) of each piece."""
    edges = {0, width} | {min(max(e, 0), width) for left in cols for e in (left, left + side)}
    return list(itertools.pairwise(sorted(edges)))


def _started(carried, classes: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """A piece's sums over `rows` rows, its first rows those carried from the row of windows above."""
    acc, total = np.zeros((classes, rows, cols), np.float32), np.zeros((rows, cols), np.float32)
    if carried is not None:
        acc[:, : carried[1].shape[0]] = carried[0]
        total[: carried[1].shape[0]] = carried[1]
    return acc, total


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
