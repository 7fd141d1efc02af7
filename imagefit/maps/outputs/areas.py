"""Per-class areas of a map: pixel counts, and hectares when it is georeferenced.

In a projected CRS a pixel's area is the transform's cell times the unit in metres, squared. In a
geographic CRS (degrees) cells shrink towards the poles: each row's cells have the area of their
latitude band on the CRS's ellipsoid (the authalic-latitude formula, exact for a north-up grid),
and polygons are measured in a Lambert azimuthal equal-area projection centred on them.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_text
from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.outputs.theme_map import UNSURE

SQUARE_METRES_PER_HECTARE = 10_000.0


@dataclass
class AreaTable:
    """Pixels (and hectares, or None with `why` when they cannot be known) of each class of a key."""

    names: tuple[str, ...]
    values: tuple[int, ...]
    pixels: np.ndarray  # (classes,) int64
    hectares: np.ndarray | None = None  # (classes,) float64
    why: str = ""  # why there are no hectares
    unsure: np.ndarray | None = None  # with a min_confidence: (pixels, hectares or NaN) left unsure

    def __add__(self, other: AreaTable) -> AreaTable:
        both = self.hectares is not None and other.hectares is not None
        unsure = None
        if self.unsure is not None or other.unsure is not None:
            unsure = sum(u for u in (self.unsure, other.unsure) if u is not None)
        return AreaTable(
            self.names, self.values, self.pixels + other.pixels,
            self.hectares + other.hectares if both else None, self.why or other.why, unsure,
        )  # fmt: skip

    @property
    def unsure_pixels(self) -> int:
        """Pixels left out of the classes as below the map's min_confidence (0 without one)."""
        return 0 if self.unsure is None else int(self.unsure[0])

    def rows(self) -> list[dict]:
        """One dict per class: class, value, pixels, share of the mapped pixels, and hectares if known;
        with a min_confidence, a last row `unsure` (no value) of the pixels left out as unsure."""
        total = max(int(self.pixels.sum()) + self.unsure_pixels, 1)
        out = []
        for k, (name, value) in enumerate(zip(self.names, self.values, strict=True)):
            row = {"class": name, "value": value, "pixels": int(self.pixels[k])}
            row["share"] = round(int(self.pixels[k]) / total, 6)
            if self.hectares is not None:
                row["hectares"] = round(float(self.hectares[k]), 6)
            out.append(row)
        if self.unsure is not None:
            row = {"class": "unsure", "value": "", "pixels": self.unsure_pixels}
            row["share"] = round(self.unsure_pixels / total, 6)
            if self.hectares is not None:
                row["hectares"] = round(float(self.unsure[1]), 6)
            out.append(row)
        return out


def metres_per_unit(crs) -> tuple[float | None, str]:
    """Metres in one unit of a CRS's axes, or None and the reason (no CRS, or a geographic one)."""
    if crs is None:
        return None, "the raster has no georeferencing"
    if not crs.is_projected:
        return None, f"its CRS ({crs.to_string()}) is geographic, in degrees"
    _, factor = crs.linear_units_factor
    return float(factor), ""


def ellipsoid(crs) -> tuple[float, float] | None:
    """The semi-major axis (metres) and inverse flattening (0 for a sphere) of a CRS's ellipsoid."""
    found = re.search(r'(?:ELLIPSOID|SPHEROID)\["[^"]*",\s*([-+0-9.eE]+),\s*([-+0-9.eE]+)', crs.to_wkt())
    return (float(found.group(1)), float(found.group(2))) if found else None


def band_area(lat1: np.ndarray, lat2: np.ndarray, radians_wide: float, axes: tuple[float, float]):
    """Square metres of the ellipsoid between latitudes lat1 and lat2 (radians), `radians_wide` of
    longitude wide: the difference of the zone areas from the equator (via the authalic latitude)."""
    a, inverse_flattening = axes
    f = 1 / inverse_flattening if inverse_flattening else 0.0
    e2 = f * (2 - f)
    b2 = a * a * (1 - e2)

    def zone(lat: np.ndarray) -> np.ndarray:  # area from the equator to lat, per radian of longitude
        s = np.sin(lat)
        if e2 == 0:
            return a * a * s
        e = math.sqrt(e2)
        return b2 / 2 * (s / (1 - e2 * s * s) + np.log((1 + e * s) / (1 - e * s)) / (2 * e))

    return np.abs(zone(lat2) - zone(lat1)) * radians_wide


def row_hectares(transform, crs, rows: int) -> tuple[np.ndarray | None, str]:
    """The ground area in hectares of one pixel of each row of a north-up grid in a geographic CRS,
    or None and the reason it is unknown."""
    if transform.b or transform.d:
        return None, f"its grid in a geographic CRS ({crs.to_string()}) is rotated"
    axes = ellipsoid(crs)
    if axes is None:
        return None, f"its geographic CRS ({crs.to_string()}) names no ellipsoid"
    _, to_radians = crs.units_factor
    edges = (transform.f + transform.e * np.arange(rows + 1)) * to_radians
    width = abs(transform.a) * to_radians
    return band_area(edges[:-1], edges[1:], width, axes) / SQUARE_METRES_PER_HECTARE, ""


def pixel_hectares(transform, crs) -> tuple[float | None, str]:
    """The ground area of one pixel in hectares, or None and the reason it is unknown."""
    factor, why = metres_per_unit(crs)
    if factor is None:
        return None, why
    unit_area = abs(transform.a * transform.e - transform.b * transform.d)
    return unit_area * factor * factor / SQUARE_METRES_PER_HECTARE, ""


def class_areas(index: np.ndarray, key: ThemeKey, transform, crs, unsure: bool = False) -> AreaTable:
    """Pixels and hectares of each class in a map of class indices (negative: no data); with
    `unsure`, those of the pixels left UNSURE too."""
    n = len(key.names)
    index = np.where(index == UNSURE, n, index) if unsure else index  # unsure: one more column
    m = n + 1 if unsure else n
    pixels = np.bincount(index[index >= 0].ravel().astype(np.int64), minlength=m)[:m]
    hectares, why = None, ""
    if crs is not None and crs.is_geographic:
        per_row, why = row_hectares(transform, crs, index.shape[0])
        if per_row is not None:
            rows = np.broadcast_to(np.arange(index.shape[0])[:, None], index.shape)
            valid = index >= 0
            cells = np.bincount(rows[valid] * m + index[valid].astype(np.int64), minlength=index.shape[0] * m)
            hectares = per_row @ cells.reshape(index.shape[0], m).astype(np.float64)
    else:
        per_pixel, why = pixel_hectares(transform, crs)
        hectares = None if per_pixel is None else pixels * per_pixel
    left_out = None
    if unsure:
        left_out = np.array([pixels[n], np.nan if hectares is None else hectares[n]])
    return AreaTable(
        key.names, key.values, pixels[:n], None if hectares is None else hectares[:n], why, left_out
    )


def polygon_hectares(geometry: np.ndarray, crs) -> np.ndarray | None:
    """Hectares of shapely polygons in `crs`: their area in a projected CRS; in a geographic one,
    their area in a Lambert azimuthal equal-area projection centred on them (None without a CRS)."""
    import shapely

    if crs is None or len(geometry) == 0:
        return None if crs is None else np.zeros(0)
    if not crs.is_geographic:
        factor, _ = metres_per_unit(crs)
        if factor is None:
            return None
        return shapely.area(geometry) * factor * factor / SQUARE_METRES_PER_HECTARE
    from rasterio.crs import CRS
    from rasterio.warp import transform

    axes = ellipsoid(crs)
    if axes is None:
        return None
    x0, y0, x1, y1 = shapely.total_bounds(geometry)
    lon, lat = transform(crs, "EPSG:4326", [(x0 + x1) / 2], [(y0 + y1) / 2])
    shape = f"+a={axes[0]} +rf={axes[1]}" if axes[1] else f"+R={axes[0]}"
    laea = CRS.from_proj4(f"+proj=laea +lat_0={lat[0]} +lon_0={lon[0]} {shape} +units=m +no_defs")

    def to_laea(xy: np.ndarray) -> np.ndarray:
        xs, ys = transform(crs, laea, xy[:, 0], xy[:, 1])
        return np.column_stack([xs, ys])

    return shapely.area(shapely.transform(geometry, to_laea)) / SQUARE_METRES_PER_HECTARE


def write_areas_csv(table: AreaTable, path: str | Path) -> Path:
    """The area table as CSV (class, value, pixels, share, hectares when known)."""
    rows = table.rows()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
    return Path(path)
