"""Per-class areas of a map: pixel counts, and hectares when it is georeferenced in a projected CRS."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_text
from imagefit.maps.key import ThemeKey

SQUARE_METRES_PER_HECTARE = 10_000.0


@dataclass
class AreaTable:
    """Pixels (and hectares, or None with `why` when they cannot be known) of each class of a key."""

    names: tuple[str, ...]
    values: tuple[int, ...]
    pixels: np.ndarray  # (classes,) int64
    hectares: np.ndarray | None = None  # (classes,) float64
    why: str = ""  # why there are no hectares

    def __add__(self, other: AreaTable) -> AreaTable:
        both = self.hectares is not None and other.hectares is not None
        return AreaTable(
            self.names, self.values, self.pixels + other.pixels,
            self.hectares + other.hectares if both else None, self.why or other.why,
        )  # fmt: skip

    def rows(self) -> list[dict]:
        """One dict per class: class, value, pixels, share of the mapped pixels, and hectares if known."""
        total = max(int(self.pixels.sum()), 1)
        out = []
        for k, (name, value) in enumerate(zip(self.names, self.values, strict=True)):
            row = {"class": name, "value": value, "pixels": int(self.pixels[k])}
            row["share"] = round(int(self.pixels[k]) / total, 6)
            if self.hectares is not None:
                row["hectares"] = round(float(self.hectares[k]), 6)
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


def pixel_hectares(transform, crs) -> tuple[float | None, str]:
    """The ground area of one pixel in hectares, or None and the reason it is unknown."""
    factor, why = metres_per_unit(crs)
    if factor is None:
        return None, why
    unit_area = abs(transform.a * transform.e - transform.b * transform.d)
    return unit_area * factor * factor / SQUARE_METRES_PER_HECTARE, ""


def class_areas(index: np.ndarray, key: ThemeKey, transform, crs) -> AreaTable:
    """Pixels and hectares of each class in a map of class indices (negative: no data)."""
    n = len(key.names)
    pixels = np.bincount(index[index >= 0].ravel().astype(np.int64), minlength=n)[:n]
    per_pixel, why = pixel_hectares(transform, crs)
    hectares = None if per_pixel is None else pixels * per_pixel
    return AreaTable(key.names, key.values, pixels, hectares, why)


def write_areas_csv(table: AreaTable, path: str | Path) -> Path:
    """The area table as CSV (class, value, pixels, share, hectares when known)."""
    rows = table.rows()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
    return Path(path)
