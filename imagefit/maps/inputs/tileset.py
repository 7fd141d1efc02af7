"""Labelled tiles: images with labels (rasters of values or colours, or a vector layer) and a key."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.errors import DataError
from imagefit.maps.inputs.key import IGNORED, KEY_FILE, ThemeKey, read_key
from imagefit.maps.inputs.labels import read_labels
from imagefit.maps.inputs.pairs import SEED_PATTERN, Pairing, images_only, pair_folders, read_pairs_csv
from imagefit.maps.inputs.rasters import RasterInfo, Window, image_bands, raster_info, read_image
from imagefit.maps.inputs.vector import VectorLabels

log = logging.getLogger(__name__)

Roi = tuple[tuple[int, int], tuple[int, int]]  # ((x0, y0), (x1, y1)): columns and rows, end excluded


@dataclass(frozen=True)
class Tile:
    """One labelled tile: its image, its labels (a raster, or the vector file) and their common size."""

    ref: str
    image: Path
    labels: Path
    height: int
    width: int


class TileSet:
    """Labelled images and their theme key: the seeds' folder `root` (3band/, theme/<ref>-theme.png,
    key-theme.txt), or images and labels as they come.

    `images` with `labels` (two folders paired by name, `label_pattern` or guessed), or `pairs` (a
    CSV of image,label paths), or `vector` with `attribute` (polygons rasterised onto each image);
    `key` when the key is not key-theme.txt beside them; `bands` (1-based; None: all but alpha)
    chooses the image bands. `ignore` is a label value, or a colour, to leave out.
    """

    def __init__(
        self, root: str | Path | None = None, ignore: int | str | None = None, *,
        images: str | Path | None = None, labels: str | Path | None = None, pairs: str | Path | None = None,
        label_pattern: str | None = None, key: str | Path | None = None, vector: str | Path | None = None,
        attribute: str | None = None, bands: tuple[int, ...] | list[int] | None = None,
    ):  # fmt: skip
        _check_sources(root, images, labels, pairs, vector, attribute)
        self.root = Path(root if root is not None else pairs.parent if pairs else Path(images).parent)
        if root is not None and not self.root.is_dir():
            raise DataError(f"tiles folder {self.root} does not exist")
        self.key: ThemeKey = read_key(key or _default_key(root, images, labels, pairs), ignore)
        self.images = Path(images) if images is not None else self.root / "3band"
        labels_at = labels if labels is not None else None if vector or pairs else self.root / "theme"
        if pairs is not None:
            self.pairing = read_pairs_csv(pairs)
        elif labels_at is not None:
            pattern = label_pattern or (SEED_PATTERN if labels is None else None)
            self.pairing = pair_folders(self.images, labels_at, pattern)
        else:
            self.pairing = images_only(self.images)
        self.band_selection = tuple(bands) if bands else None
        self.vector = VectorLabels(vector, attribute, self.key) if vector else None
        self._infos: dict[str, RasterInfo] = {}
        self._tiles: dict[str, Tile] = {}
        self._bands: int | None = None
        if self.vector is not None:
            self._place_vector()
        self.pairing.warn_missing(labels_at or vector)

    @property
    def classes(self) -> list[str]:
        return list(self.key.names)

    @property
    def bands(self) -> int:
        """The number of image bands used (those `bands` selects, of the first tile)."""
        if self._bands is None:
            first = self.refs()[0]
            self._bands = len(image_bands(self.pairing.pairs[first].image, self.band_selection))
        return self._bands

    def refs(self) -> list[str]:
        """Every ref (image stem) with labels, sorted."""
        return sorted(self.pairing.pairs)

    def tile(self, ref: str) -> Tile:
        """The files of `ref`, checked: both present, the same size and CRS, the image's bands."""
        if ref not in self._tiles:
            self._tiles[ref] = self._check(ref)
        return self._tiles[ref]

    def read(self, ref: str, roi: Roi | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (rows, cols, bands) uint8 and class indices (rows, cols) of a tile or a region of it,
        IGNORED where unlabelled, ignored or the image's nodata."""
        tile = self.tile(ref)
        window = roi_window(roi, tile)
        pixels, valid = read_image(tile.image, window, self.band_selection)
        labels = self._labels(ref, window)
        labels[~valid] = IGNORED
        return pixels, labels

    def _labels(self, ref: str, window: Window | None) -> np.ndarray:
        if self.vector is not None:
            return self.vector.rasterise(self._info(ref), window)
        return read_labels(self.tile(ref).labels, self.key, window)

    def _info(self, ref: str) -> RasterInfo:
        if ref not in self._infos:
            self._infos[ref] = raster_info(self.pairing.pairs[ref].image)
        return self._infos[ref]

    def _check(self, ref: str) -> Tile:
        pair = self.pairing.pairs.get(ref)
        if pair is None:
            raise DataError(_no_pair(ref, self.pairing, self.images))
        a = self._info(ref)
        if pair.labels is not None:
            _same_grid(ref, a, raster_info(pair.labels))
        n = len(image_bands(pair.image, self.band_selection))
        if n != self.bands:
            raise DataError(
                f"image {pair.image} has {n} band(s) but {self.pairing.pairs[self.refs()[0]].image} has "
                f"{self.bands}: every image needs the same bands (choose them with --bands)"
            )
        return Tile(ref, pair.image, pair.labels or self.vector.path, a.height, a.width)

    def _place_vector(self) -> None:
        """Leave out (listed) the images no geometry reaches; none reached is an error."""
        vector = self.vector
        off = [ref for ref in self.refs() if not vector.covers(_georeferenced(self._info(ref), vector))]
        if len(off) == len(self.pairing.pairs):
            x0, y0, x1, y1 = vector.total_bounds()
            raise DataError(
                f"{vector.path}: its geometries ({x0:.6g}, {y0:.6g})-({x1:.6g}, {y1:.6g}) lie outside "
                f"every image of {self.images} ({len(off)} images): is it the layer of another area?"
            )
        for ref in off:
            self.pairing.missing[ref] = self.pairing.pairs.pop(ref).image


def _check_sources(root, images, labels, pairs, vector, attribute) -> None:
    """One source of images and one of labels, or a clear error."""
    if pairs is not None and (images is not None or labels is not None or vector is not None):
        raise DataError("--pairs names images and labels: give it without --images, --labels or --vector")
    if root is None and images is None and pairs is None:
        raise DataError("no images: give a tiles folder (3band/, theme/), --images DIR or --pairs CSV")
    if labels is not None and vector is not None:
        raise DataError("labels from --labels or from --vector: give one of them")
    if images is not None and labels is None and vector is None:
        raise DataError(f"--images {images}: name the labels with --labels DIR or --vector FILE")
    if (vector is None) != (attribute is None):
        raise DataError("--vector FILE needs --attribute NAME (the class attribute), and the reverse")


def _default_key(root, images, labels, pairs) -> Path:
    """key-theme.txt beside the tiles (or beside the images, labels or pairs file)."""
    if root is not None:
        return Path(root) / KEY_FILE
    places = [Path(p).parent for p in (images, labels, pairs) if p is not None]
    for place in places:
        if (place / KEY_FILE).is_file():
            return place / KEY_FILE
    raise DataError(
        f"no key: no {KEY_FILE} in {', '.join(map(str, places))}: pass --key FILE "
        "(`name<TAB>value` or `name<TAB>#RRGGBB` lines)"
    )


def _same_grid(ref: str, a: RasterInfo, b: RasterInfo) -> None:
    if (a.height, a.width) != (b.height, b.width):
        raise DataError(
            f"ref {ref}: image {a.path} is {a.width}x{a.height} "
            f"but labels {b.path} are {b.width}x{b.height}: they must be the same size"
        )
    if a.crs is not None and b.crs is not None and a.crs != b.crs:
        raise DataError(
            f"ref {ref}: image {a.path} is in {a.crs} but labels {b.path} are in {b.crs}: "
            "they must be in the same CRS"
        )


def _georeferenced(info: RasterInfo, vector: VectorLabels) -> RasterInfo:
    if info.crs is None:
        raise DataError(
            f"image {info.path} has no georeferencing (CRS): the vector layer {vector.path} cannot "
            "be placed on it"
        )
    return info


def _no_pair(ref: str, pairing: Pairing, images: Path) -> str:
    if ref in pairing.missing:
        return (
            f"ref {ref}: no labels for image {pairing.missing[ref]} (by the names {pairing.pattern or '-'})"
        )
    known = ", ".join(sorted(pairing.pairs)[:5]) or "none"
    return f"ref {ref!r} has no image in {images} (refs there: {known}, ...)"


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
