"""Labels from a vector layer: polygons with a class attribute, rasterised onto each image's own grid.

The layer is read once with pyogrio; its geometries are reprojected to an image's CRS
(rasterio.warp.transform_geom, once per CRS) and burnt into the image's pixels or a window of them
(rasterio.features.rasterize: a pixel takes the class of the polygon holding its centre, the later
feature on top). Pixels no polygon covers are unlabelled (IGNORED).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagefit.errors import DataError
from imagefit.maps.inputs.key import IGNORED, ThemeKey
from imagefit.maps.inputs.rasters import RasterInfo, Window


class VectorLabels:
    """The polygons of a vector file with their class index by `attribute` (names or values of `key`)."""

    def __init__(self, path: str | Path, attribute: str, key: ThemeKey, layer: str | None = None):
        import pyogrio
        import shapely
        from pyogrio.errors import DataSourceError

        self.path, self.attribute = Path(path), attribute
        if not self.path.exists():
            raise DataError(f"vector file {self.path} does not exist")
        try:
            info = pyogrio.read_info(self.path, layer=layer)
        except DataSourceError as exc:
            raise DataError(f"{self.path} is not a readable vector file: {exc}") from exc
        fields = list(info["fields"])
        if attribute not in fields:
            known = ", ".join(fields) or "none"
            raise DataError(
                f"{self.path} has no attribute {attribute!r} (its attributes: {known}): "
                "name the class attribute with --attribute"
            )
        meta, _, wkb, columns = pyogrio.raw.read(self.path, layer=layer, columns=[attribute])
        if not meta["crs"]:
            raise DataError(f"{self.path} has no CRS: its geometries cannot be placed on the images")
        self.crs = meta["crs"]
        self.geometries = shapely.from_wkb(wkb)
        self.classes = class_indices(columns[0], key, f"{self.path} attribute {attribute!r}")
        self._projected: dict[str, list] = {}

    def bounds(self) -> np.ndarray:
        """(minx, miny, maxx, maxy) of every geometry, in the layer's CRS."""
        import shapely

        return shapely.bounds(self.geometries)

    def total_bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the whole layer, in its CRS."""
        b = self.bounds()
        return (*np.nanmin(b[:, :2], 0).tolist(), *np.nanmax(b[:, 2:], 0).tolist())

    def covers(self, info: RasterInfo) -> bool:
        """Whether any geometry's bounding box meets the image's extent."""
        from rasterio.warp import transform_bounds

        left, bottom, right, top = transform_bounds(info.crs, self.crs, *_extent(info))
        b = self.bounds()
        return bool(((b[:, 0] <= right) & (b[:, 2] >= left) & (b[:, 1] <= top) & (b[:, 3] >= bottom)).any())

    def rasterise(self, info: RasterInfo, window: Window | None = None) -> np.ndarray:
        """Class indices (rows, cols) int16 of an image (or a window of it): IGNORED where no polygon is."""
        from rasterio.features import rasterize
        from rasterio.transform import array_bounds
        from rasterio.windows import Window as RioWindow
        from rasterio.windows import transform as window_transform

        row, col, height, width = window or (0, 0, info.height, info.width)
        transform = window_transform(RioWindow(col, row, width, height), info.transform)
        mappings, b = self._in(info)
        west, south, east, north = array_bounds(height, width, transform)
        near = (b[:, 0] <= east) & (b[:, 2] >= west) & (b[:, 1] <= north) & (b[:, 3] >= south)
        shapes = [(mappings[i], int(self.classes[i]) + 1) for i in np.flatnonzero(near)]
        if not shapes:
            return np.full((height, width), IGNORED, np.int16)
        burnt = rasterize(shapes, out_shape=(height, width), transform=transform, fill=0, dtype="int16")
        return burnt - 1

    def _in(self, info: RasterInfo) -> tuple[list, np.ndarray]:
        """The geometries as GeoJSON-like mappings in the image's CRS, and their bounds (n, 4), NaN
        for empty ones (computed once per CRS)."""
        from rasterio.crs import CRS
        from rasterio.warp import transform_geom

        if info.crs is None:
            raise DataError(
                f"image {info.path} has no georeferencing (CRS): the vector layer {self.path} cannot "
                "be placed on it"
            )
        name = info.crs.to_wkt()
        if name not in self._projected:
            import shapely

            mappings = [None if g is None else shapely.geometry.mapping(g) for g in self.geometries]
            bounds = self.bounds()
            if CRS.from_user_input(self.crs) != info.crs:
                present = [m for m in mappings if m is not None]
                moved = iter(transform_geom(self.crs, info.crs, present) if present else [])
                mappings = [None if m is None else next(moved) for m in mappings]
                shapes = [None if m is None else shapely.geometry.shape(m) for m in mappings]
                bounds = shapely.bounds(np.array(shapes, dtype=object))
            self._projected[name] = mappings, bounds
        return self._projected[name]


def _extent(info: RasterInfo) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of an image in its CRS."""
    from rasterio.transform import array_bounds

    return array_bounds(info.height, info.width, info.transform)  # west, south, east, north


def class_indices(values: np.ndarray, key: ThemeKey, origin: str) -> np.ndarray:
    """The class index of each feature's attribute value: a class name or a label value of `key`
    (IGNORED for the ignored value); a value matching neither raises, naming it."""
    by_name = {name.casefold(): i for i, name in enumerate(key.names)}
    by_value = {str(v): i for i, v in enumerate(key.values)}
    ignored = "" if key.ignore is None else str(key.ignore).casefold()
    out = np.empty(len(values), np.int16)
    unknown: dict[str, int] = {}
    for n, value in enumerate(values):
        text = _text(value)
        if not text or text.casefold() == ignored:  # a feature without a class is unlabelled
            out[n] = IGNORED
        elif text.casefold() in by_name or text in by_value:
            out[n] = by_name.get(text.casefold(), by_value.get(text))
        else:
            unknown[text] = unknown.get(text, 0) + 1
    if unknown:
        listed = ", ".join(f"{v!r} ({n} features)" for v, n in list(unknown.items())[:5])
        raise DataError(
            f"{origin}: values not in the key {key.source or ''}: {listed}: add them to the key "
            f"(names or values), or pass --ignore {next(iter(unknown))!r} to leave them out"
        )
    return out


def _text(value) -> str:
    """An attribute value as text: integral numbers without a decimal point."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()
