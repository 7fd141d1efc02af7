"""Progress of a map in pixels: a bar with Mpx/s and ETA on a terminal, else one line per tile.

A map of a large raster or a folder of tiles runs for hours; the bar counts the pixels of every
block as it is written. When stderr is not a terminal (a log file, a batch job) a bar would fill
the log with carriage returns, so one line per finished tile is logged instead; `--quiet` (the
`imagefit` logger above INFO) shows neither.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def mpx(pixels: float) -> str:
    """Pixels as megapixels, e.g. '12.6 Mpx'."""
    return f"{pixels / 1e6:,.1f} Mpx"


def clock(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class MapProgress:
    """Pixels mapped of `tiles` ((tile, pixels) each) shown as they come; `enabled` False: nothing."""

    def __init__(self, tiles: list[tuple[Path, int]], enabled: bool = True, terminal: bool | None = None):
        self.pixels = dict(tiles)
        self.total, self.done, self.fresh = sum(self.pixels.values()), 0, 0
        self.tiles_done = 0
        self.enabled = enabled
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.bar = None
        self.started = time.perf_counter()
        self._tile_started = self.started

    def __enter__(self) -> MapProgress:
        if self.enabled and self.terminal:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc="map", unit="px", unit_scale=True, dynamic_ncols=True)
        self.started = self._tile_started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.close()
        return False

    def advance(self, pixels: int) -> None:
        """`pixels` more mapped (a block written)."""
        self.done += pixels
        self.fresh += pixels
        if self.bar is not None:
            self.bar.update(pixels)

    def skip(self, tile: Path) -> None:
        """A tile already mapped (complete outputs of an earlier run): counted done, not timed."""
        self.done += self.pixels[tile]
        self.tiles_done += 1
        if self.bar is not None:
            self.bar.update(self.pixels[tile])
            self.bar.unpause()
        self._tile_started = time.perf_counter()

    def tile_done(self, tile: Path) -> None:
        """A tile finished: on a terminal the bar says which; otherwise one line with rate and ETA."""
        self.tiles_done += 1
        now = time.perf_counter()
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.tiles_done}/{len(self.pixels)} tiles", refresh=True)
        elif self.enabled:
            rate = self.fresh / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            seconds = now - self._tile_started
            log.info(
                "map %d/%d %s: %s in %.1f s; %s of %s done, %.2f Mpx/s, ETA %s",
                self.tiles_done, len(self.pixels), Path(tile).name, mpx(self.pixels[tile]), seconds,
                mpx(self.done), mpx(self.total), rate / 1e6, clock(eta),
            )  # fmt: skip
        self._tile_started = now
