"""A folder of aerial tiles: `3band/<ref>.<tif|png|jpg>` images, `theme/<ref>-theme.png` labels and a key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.errors import DataError
from imagefit.maps.key import KEY_FILE, ThemeKey, read_key
from imagefit.maps.rasters import Window, raster_info, read_band, read_rgb

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
Roi = tuple[tuple[int, int], tuple[int, int]]  # ((x0, y0), (x1, y1)): columns and rows, end excluded


@dataclass(frozen=True)
class Tile:
    """One labelled tile: its image, its label raster and their common size."""

    ref: str
    image: Path
    labels: Path
    height: int
    width: int


class TileSet:
    """The tiles under `root` with their theme key; `ignore` is a label value to leave out."""

    def __init__(self, root: str | Path, ignore: int | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"tiles folder {self.root} does not exist")
        self.key: ThemeKey = read_key(self.root / KEY_FILE, ignore)

    @property
    def classes(self) -> list[str]:
        return list(self.key.names)

    def refs(self) -> list[str]:
        """Every ref with an image in 3band/, sorted."""
        folder = self.root / "3band"
        found = {p.stem for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
        return sorted(found)

    def tile(self, ref: str) -> Tile:
        """The files of `ref`, checked: both present, the same size."""
        image = self._image_path(ref)
        labels = self.root / "theme" / f"{ref}-theme.png"
        if not labels.is_file():
            raise DataError(f"ref {ref}: no label raster {labels}")
        a, b = raster_info(image), raster_info(labels)
        if (a.height, a.width) != (b.height, b.width):
            raise DataError(
                f"ref {ref}: image {image} is {a.width}x{a.height} "
                f"but labels {labels} are {b.width}x{b.height}: they must be the same size"
            )
        return Tile(ref, image, labels, a.height, a.width)

    def read(self, ref: str, roi: Roi | None = None) -> tuple[np.ndarray, np.ndarray]:
        """RGB pixels (rows, cols, 3) and class indices (rows, cols) of a tile or a region of it."""
        tile = self.tile(ref)
        window = roi_window(roi, tile)
        labels = self.key.encode(read_band(tile.labels, window), tile.labels)
        return read_rgb(tile.image, window), labels

    def _image_path(self, ref: str) -> Path:
        for suffix in IMAGE_SUFFIXES:
            for candidate in (suffix, suffix.upper()):
                path = self.root / "3band" / f"{ref}{candidate}"
                if path.is_file():
                    return path
        known = ", ".join(self.refs()[:5]) or "none"
        raise DataError(f"ref {ref!r} has no image in {self.root / '3band'} (refs there: {known}, ...)")


def roi_window(roi: Roi | None, tile: Tile) -> Window | None:
    """The (row, col, height, width) window of a ROI, checked to lie inside the tile."""
    if roi is None:
        return None
    (x0, y0), (x1, y1) = roi
    if not (0 <= x0 < x1 <= tile.width and 0 <= y0 < y1 <= tile.height):
        raise DataError(
            f"ROI ({x0},{y0})-({x1},{y1}) is not inside tile {tile.ref} ({tile.width}x{tile.height} pixels)"
        )
    return (y0, x0, y1 - y0, x1 - x0)


def parse_roi(text: str) -> Roi:
    """A ROI from `x0,y0,x1,y1`."""
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise DataError(f"ROI {text!r}: expected x0,y0,x1,y1 (pixels, end excluded)") from None
    return ((x0, y0), (x1, y1))
