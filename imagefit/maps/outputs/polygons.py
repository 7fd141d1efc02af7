"""A theme map as polygons in a GeoPackage: class name, label value and area of each patch of one class.

Pixels of one class that touch by an edge become one polygon (rasterio.features.shapes), also across
the edges of the blocks a map is streamed in (those pieces merged by a union). With a
tolerance in map units, the polygons of a map are simplified together as a coverage (shapely's
coverage_simplify), so neighbours keep sharing their edges: no gaps or overlaps appear.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.atomic import atomic_path
from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.outputs.areas import polygon_hectares
from imagefit.maps.outputs.theme_map import ThemeMap

log = logging.getLogger(__name__)
LAYER = "theme"


@dataclass
class Polygons:
    """The polygons of a map with their class index and area in map units squared."""

    geometry: np.ndarray  # shapely Polygons
    index: np.ndarray  # class index of each
    area: np.ndarray  # map units squared
    crs: object | None


def map_transform(theme_map: ThemeMap):
    """The affine transform of the mapped region (the source's, shifted to the region's corner)."""
    from rasterio.windows import Window, transform

    r = theme_map.region
    return transform(Window(r.col, r.row, r.width, r.height), theme_map.source.transform)


def polygonise(theme_map: ThemeMap, simplify: float = 0.0) -> Polygons:
    """Polygons of the map's classes (no-data left out), simplified as a coverage by `simplify` map units."""
    seams = SeamPolygons(theme_map.region, map_transform(theme_map), theme_map.source.crs)
    seams.add(theme_map.index, 0, 0)
    return seams.polygons(simplify)


class SeamPolygons:
    """The polygons of a map given block by block: pixels of one class that touch by an edge are one
    polygon, also where they meet across the edge of two blocks (those are merged at the end, by a
    union); polygons inside a block are final when it comes."""

    def __init__(self, region, transform, crs):
        self.height, self.width, self.transform, self.crs = region.height, region.width, transform, crs
        self.done: list[tuple[np.ndarray, np.ndarray]] = []  # (geometry, class) in pixel coordinates
        self.seams: dict[int, list] = {}  # class -> polygons reaching a block edge inside the map

    def add(self, index: np.ndarray, row: int, col: int) -> None:
        """The polygons of a block of class indices (negative: none) at (row, col) of the map."""
        import shapely
        from rasterio import Affine, features

        index = index.astype(np.int16, copy=False)
        place = Affine.translation(col, row)
        shapes = list(features.shapes(index, mask=index >= 0, connectivity=4, transform=place))
        if not shapes:
            return
        geometry = np.array([_polygon(g["coordinates"]) for g, _ in shapes], dtype=object)
        classes = np.array([int(v) for _, v in shapes], np.int64)
        x0, y0, x1, y1 = shapely.bounds(geometry).T
        h, w = index.shape
        seam = ((x0 == col) & (col > 0)) | ((y0 == row) & (row > 0))
        seam |= ((x1 == col + w) & (col + w < self.width)) | ((y1 == row + h) & (row + h < self.height))
        self.done.append((geometry[~seam], classes[~seam]))
        for g, k in zip(geometry[seam], classes[seam], strict=True):
            self.seams.setdefault(int(k), []).append(g)

    def polygons(self, simplify: float = 0.0) -> Polygons:
        """Every polygon of the map in its coordinates, those split by block edges merged."""
        import shapely

        parts = [g for g, _ in self.done]
        classes = [k for _, k in self.done]
        for k, pieces in sorted(self.seams.items()):
            merged = shapely.get_parts(shapely.union_all(np.array(pieces, dtype=object)))
            parts.append(merged)
            classes.append(np.full(len(merged), k, np.int64))
        geometry = np.concatenate(parts) if parts else np.zeros(0, dtype=object)
        index = np.concatenate(classes) if classes else np.zeros(0, np.int64)
        t = self.transform
        geometry = shapely.transform(geometry, lambda xy: np.column_stack(t * (xy[:, 0], xy[:, 1])))
        if simplify > 0 and len(geometry):
            geometry = shapely.coverage_simplify(geometry, simplify)
        return Polygons(geometry, index, shapely.area(geometry), self.crs)


def _polygon(rings: list):
    """A shapely Polygon of GeoJSON rings (shell, holes...): twice as fast as shapely.geometry.shape."""
    import shapely

    holes = [shapely.linearrings(ring) for ring in rings[1:]] or None
    return shapely.polygons(rings[0], holes)


class _Nothing(Exception):
    """Ends a writer that has no polygons to write, leaving the file as it was."""


class PolygonWriter:
    """A GeoPackage written atomically: the polygons of each map appended to the layer of its CRS.

    Maps in one CRS share the layer `theme` (with a `tile` column); a map in another CRS gets a
    layer of its own (`theme_<EPSG>`). Until the writer closes without error the old file stays.
    """

    def __init__(self, path: str | Path, simplify: float = 0.0):
        self.path, self.simplify = Path(path), simplify
        self.layers: dict[str, str] = {}
        self.count = 0
        self._stack = ExitStack()

    def __enter__(self) -> PolygonWriter:
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self._tmp.unlink()  # the GeoPackage driver creates its own file
        return self

    def __exit__(self, *exc) -> bool:
        if exc[0] is None and self.count == 0:  # nothing to write: leave any old file as it is
            with suppress(_Nothing):
                self._stack.__exit__(_Nothing, _Nothing(), None)
            return False
        return self._stack.__exit__(*exc)

    def add(self, theme_map: ThemeMap, key: ThemeKey, tile: str) -> int:
        """Append the map's polygons (class, value, area, hectares when georeferenced) to its CRS's layer."""
        return self.add_polygons(polygonise(theme_map, self.simplify), key, tile)

    def add_polygons(self, polygons: Polygons, key: ThemeKey, tile: str) -> int:
        """Append a map's polygons (made with this writer's `simplify`) to its CRS's layer."""
        if len(polygons.geometry) == 0:
            log.warning("%s: no mapped pixel, so no polygons", tile)
            return 0
        layer, append = self._layer(polygons.crs)
        fields, data = _fields(polygons, key, tile)
        _write(self._tmp, polygons, layer, fields, data, append)
        self.count += len(polygons.geometry)
        return len(polygons.geometry)

    def _layer(self, crs) -> tuple[str, bool]:
        name = crs.to_wkt() if crs is not None else ""
        if name in self.layers:
            return self.layers[name], True
        epsg = crs.to_epsg() if crs is not None else None
        layer = LAYER if not self.layers else f"{LAYER}_{epsg or len(self.layers) + 1}"
        if self.layers:
            log.warning("maps in another CRS: their polygons go to layer %s of %s", layer, self.path)
        self.layers[name] = layer
        return layer, False


def _fields(polygons: Polygons, key: ThemeKey, tile: str) -> tuple[list[str], list[np.ndarray]]:
    names = np.array(key.names, dtype=object)[polygons.index]
    values = np.asarray(key.values, np.int32)[polygons.index]
    fields = ["tile", "class", "value", "area"]
    data = [np.full(len(names), tile, dtype=object), names, values, polygons.area.astype(np.float64)]
    hectares = polygon_hectares(polygons.geometry, polygons.crs)
    if hectares is not None:
        fields.append("hectares")
        data.append(hectares)
    return fields, data


def _write(path: Path, polygons: Polygons, layer: str, fields, data, append: bool) -> None:
    import shapely
    from pyogrio.raw import write

    crs = polygons.crs.to_wkt() if polygons.crs is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the temporary file's name does not end in .gpkg
        write(
            path, shapely.to_wkb(polygons.geometry), data, fields, layer=layer, driver="GPKG",
            geometry_type="Polygon", crs=crs, append=append,
        )  # fmt: skip


def read_polygons(path: str | Path, key: ThemeKey) -> Polygons:
    """The polygons a PolygonWriter wrote to its first layer (one map's), as `Polygons` again."""
    import shapely
    from pyogrio.raw import read
    from rasterio.crs import CRS

    meta, _, wkb, data = read(path, layer=LAYER)
    fields = list(meta["fields"])
    names = list(key.names)
    index = np.array([names.index(name) for name in data[fields.index("class")]], np.int64)
    crs = CRS.from_user_input(meta["crs"]) if meta["crs"] else None
    return Polygons(shapely.from_wkb(wkb), index, np.asarray(data[fields.index("area")], np.float64), crs)


def merge_polygons(parts: list[Path], path: Path, key: ThemeKey, simplify: float = 0.0) -> Path:
    """One GeoPackage of the polygons of many maps, each part (X-map-polygons.gpkg, a PolygonWriter's)
    appended in turn with its tile X."""
    with PolygonWriter(path, simplify) as writer:
        for part in parts:
            writer.add_polygons(read_polygons(part, key), key, part.name.removesuffix("-map-polygons.gpkg"))
    return path
