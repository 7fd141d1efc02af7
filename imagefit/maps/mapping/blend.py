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
import os
import tempfile
from collections.abc import Callable

import numpy as np

from imagefit.errors import OptionError
from imagefit.heap import release_memory

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
    shares are carried over, in a temporary file (`CarriedRows`): what is held in memory is a window
    and its pieces, whatever the region's width. The windows form a grid of one size, so the sum of
    the weights at a pixel is the product of a row's and a column's (`axis_totals`), never accumulated.
    """
    out = window - patch + 1
    if out <= OVERLAP:
        raise OptionError(f"window {window} is too small to blend: use at least {OVERLAP + patch + ALIGN}")
    rows, rside = window_starts(region.height, out)
    cols, cside = window_starts(region.width, out)
    with CarriedRows(_pieces(cols, cside, region.width)) as carry:
        yield from _blend(engine, read, region, patch, probabilities, (rows, rside), (cols, cside), carry)


def _blend(engine, read, region, patch: int, probabilities: bool, row_windows, col_windows, carry):
    """`blended_blocks` for windows starting at `rows` and `cols` (with their sides)."""
    (rows, rside), (cols, cside) = row_windows, col_windows
    c, height, width, pieces = patch // 2, region.height, region.width, carry.pieces
    wr, wc = window_weight(rside), window_weight(cside)
    row_total, col_total = axis_totals(rows, wr, height), axis_totals(cols, wc, width)
    base, n = 0, 0  # the rows not yet final start at base
    for k, top in enumerate(rows):
        lo, hi = max(top, 0), min(top + rside, height)
        done = max(rows[k + 1], 0) if k + 1 < len(rows) else height  # rows above are final after k
        band: dict[int, np.ndarray] = {}
        emitted = 0
        for j, left in enumerate(cols):
            x = read(region.row + top - c, region.col + left - c, rside + patch - 1, cside + patch - 1)
            values = engine(x)  # a new array for each window: weighted (and softmaxed) in place
            if probabilities:
                softmax(values, out=values)
            n += 1
            inside = values[:, lo - top : hi - top]
            inside *= wr[lo - top : hi - top, None] * wc[None, :]
            for i, (a, b) in enumerate(pieces):
                if a < left + cside and b > left:
                    if i not in band:
                        band[i] = carry.started(i, len(values), hi - base)
                    band[i][:, lo - base : hi - base] += inside[:, :, a - left : b - left]
            del values, inside
            limit = max(cols[j + 1], 0) if j + 1 < len(cols) else width
            while emitted < len(pieces) and pieces[emitted][1] <= limit:  # no later window reaches it
                acc, (a, b) = band.pop(emitted), pieces[emitted]
                carry.put(emitted, acc[:, done - base :])
                if done > base:
                    final = acc[:, : done - base]
                    final /= row_total[base:done, None] * col_total[None, a:b]
                    yield n, base, a, final
                del acc
                emitted += 1
        base = max(base, done)
        release_memory(collect=False)  # the row's windows and pieces, freed: the heap keeps their pages


def axis_totals(starts: list[int], weight: np.ndarray, length: int) -> np.ndarray:
    """The sum, at each pixel of an axis of `length`, of the weights of the windows starting at `starts`."""
    total = np.zeros(length, np.float32)
    for start in starts:
        lo, hi = max(start, 0), min(start + len(weight), length)
        total[lo:hi] += weight[lo - start : hi - start]
    return total


def _pieces(cols: list[int], side: int, width: int) -> list[tuple[int, int]]:
    """The region's columns cut wherever a window starts or ends: [start, end) of each piece."""
    edges = {0, width} | {min(max(e, 0), width) for left in cols for e in (left, left + side)}
    return list(itertools.pairwise(sorted(edges)))


class CarriedRows:
    """The weighted sums of each piece of a row of windows over the rows the next row of windows
    shares, kept (float32) in an unnamed temporary file until that row takes them: they are the one
    thing in a blend that grows with the region's width (about 3 MB per 1,000 px of width for 6
    classes), so memory does not; the file lives in the page cache and goes when closed."""

    def __init__(self, pieces: list[tuple[int, int]]):
        self.pieces = pieces
        self.file = tempfile.TemporaryFile(prefix="imagefit-blend-")  # noqa: SIM115 (closed on exit)
        self.shapes: dict[int, tuple[int, ...]] = {}  # pieces carried
        self.slots: dict[int, tuple[int, int]] = {}  # piece -> where its sums go in the file, and room

    def __enter__(self) -> CarriedRows:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def put(self, i: int, sums: np.ndarray) -> None:
        """Piece `i`'s sums (classes, rows, its columns) for the next row of windows."""
        if not sums.size:  # the last row of windows: nothing follows
            return
        sums = np.ascontiguousarray(sums, np.float32)
        offset, room = self.slots.get(i, (0, -1))
        if sums.nbytes > room:  # the rows carried differ by one from row to row: a slot never overflows
            offset, room = self.file.seek(0, os.SEEK_END), sums.nbytes
            self.slots[i] = offset, room
        self.file.seek(offset)
        self.file.write(memoryview(sums).cast("B"))
        self.shapes[i] = sums.shape

    def started(self, i: int, classes: int, rows: int) -> np.ndarray:
        """Piece `i`'s sums over `rows` rows: zeros, the first rows those carried from the row above."""
        a, b = self.pieces[i]
        acc = np.zeros((classes, rows, b - a), np.float32)
        shape = self.shapes.pop(i, None)
        if shape is not None:
            self.file.seek(self.slots[i][0])
            carried = np.empty(shape, np.float32)
            if self.file.readinto(memoryview(carried).cast("B")) != carried.nbytes:
                raise OSError(f"the blend's temporary file {self.file.name} lost rows")
            acc[:, : shape[1]] = carried
        return acc


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities (classes, rows, cols) from logits, into `out` (which may be `logits`) or a
    new array."""
    out = np.subtract(logits, logits.max(0, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(0, keepdims=True)
    return out


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
