"""A map streamed into its files: block by block as windows finish, in memory that follows the window.

Each finished block of class indices and confidence goes at once to the map's and confidence's
Cloud-Optimized GeoTIFFs; its areas, its confusion matrix against the labels (read window by window
too) and its polygons are accumulated; then it is dropped. Nothing the size of the raster is held,
so a 50,000 px orthomosaic maps in the memory a 1,000 px tile does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.inputs.labels import read_labels
from imagefit.maps.inputs.rasters import RasterInfo
from imagefit.maps.mapping.region import MapBlock, map_blocks
from imagefit.maps.outputs.areas import AreaTable, class_areas
from imagefit.maps.outputs.geotiff import MapWriter, bounded_cache, confidence_writer
from imagefit.maps.outputs.metrics import confusion
from imagefit.maps.outputs.polygons import Polygons, SeamPolygons
from imagefit.maps.outputs.theme_map import NODATA, UNSURE, Region


@dataclass
class StreamedMap:
    """What streaming a map wrote and counted: its region and time, pixels mapped and left unsure,
    areas, and with labels the confusion matrix and the labelled pixels left unsure."""

    source: RasterInfo
    region: Region
    seconds: float
    windows: int
    mapped: int
    unsure: int
    areas: AreaTable
    confusion: np.ndarray | None = None
    unsure_labelled: int = 0
    polygons: Polygons | None = None
    min_confidence: float | None = None


@dataclass
class MapTarget:
    """Where a streamed map goes and what it is compared with: the map and confidence GeoTIFFs, the
    label raster (None: no metrics), and whether to collect polygons (simplified by `simplify`)."""

    map: Path
    confidence: Path
    truth: Path | None = None
    polygons: bool = False
    simplify: float = 0.0


class _Tally:
    """Areas, confusion matrix and polygons of a map, added to block by block."""

    def __init__(self, key: ThemeKey, source: RasterInfo, region: Region, target: MapTarget, unsure: bool):
        from rasterio.windows import Window, transform

        self.key, self.source, self.region, self.target, self.unsure = key, source, region, target, unsure
        self.transform = transform(
            Window(region.col, region.row, region.width, region.height), source.transform
        )
        self.areas: AreaTable | None = None
        self.confusion = None
        self.mapped = self.unsure_pixels = self.unsure_labelled = 0
        self.seams = SeamPolygons(region, self.transform, source.crs) if target.polygons else None

    def add(self, block: MapBlock) -> None:
        index, (h, w) = block.index, block.index.shape
        place = self.transform @ self.transform.translation(block.col, block.row)
        areas = class_areas(index, self.key, place, self.source.crs, self.unsure)
        self.areas = areas if self.areas is None else self.areas + areas
        self.mapped += int((index >= 0).sum())
        self.unsure_pixels += int((index == UNSURE).sum())
        if self.target.truth is not None:
            window = (self.region.row + block.row, self.region.col + block.col, h, w)
            labels = read_labels(self.target.truth, self.key, window)
            cm = confusion(index, labels, len(self.key.names))
            self.confusion = cm if self.confusion is None else self.confusion + cm
            self.unsure_labelled += int(((labels >= 0) & (index == UNSURE)).sum())
        if self.seams is not None:
            self.seams.add(index, block.row, block.col)


def stream_map(
    engine, path: Path, region: Region, source: RasterInfo, patch: int, mean, std, key: ThemeKey,
    target: MapTarget, window: int, bands: list[int] | None = None, min_confidence: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> StreamedMap:  # fmt: skip
    """Map `region` of the raster at `path` into `target`'s files, block by block; `progress` is told
    the pixels of each block as it is written."""
    started = time.perf_counter()
    tally = _Tally(key, source, region, target, min_confidence is not None)
    windows = 0
    with (
        bounded_cache(),
        MapWriter(target.map, key, source, region) as classes,
        confidence_writer(target.confidence, source, region) as sure,
    ):
        for block in map_blocks(engine, path, region, patch, mean, std, window, bands, min_confidence):
            classes.write(block.index, block.row, block.col)
            sure.write(block.confidence, block.row, block.col)
            tally.add(block)
            windows = block.windows
            if progress is not None:
                progress(block.index.size)
        seconds = time.perf_counter() - started  # the map's time, not the COG copies'
    polygons = tally.seams.polygons(target.simplify) if tally.seams is not None else None
    return StreamedMap(
        source, region, seconds, windows, tally.mapped, tally.unsure_pixels, tally.areas, tally.confusion,
        tally.unsure_labelled, polygons, min_confidence,
    )  # fmt: skip


def picture_index(path: Path, key: ThemeKey, max_side: int = 4096) -> np.ndarray:
    """Class indices (NODATA where none) of a written map, read from its overviews so that the
    longer side is at most `max_side` pixels: what its PNG shows."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        scale = max(1, -(-max(ds.height, ds.width) // max_side))
        shape = (max(1, ds.height // scale), max(1, ds.width // scale))
        values = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
    lookup = np.full(65536, NODATA, np.int16)
    lookup[list(key.values)] = np.arange(len(key.values))
    return lookup[values]
