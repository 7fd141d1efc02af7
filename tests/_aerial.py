"""Small copies of the shared aerial tiles for tests: crops, georeferenced GeoTIFFs, keys, vector layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from tests.conftest import SHARED_DATA

AERIAL = SHARED_DATA / "aerial-tiles"
needs_aerial = pytest.mark.skipif(not AERIAL.is_dir(), reason=f"real data not found at {AERIAL}")

VALUES = {
    "Building": 1000, "Land (unpaved area)": 2000, "Road": 3000,
    "Vegetation": 4000, "Water": 5000, "Unlabeled": 6000,
}  # fmt: skip
COLOURS = {
    "Building": "#3C1098", "Land (unpaved area)": "#8429F6", "Road": "#6EC1E4",
    "Vegetation": "#FEDD3A", "Water": "#E2A929", "Unlabeled": "#9B9B9B",
}  # fmt: skip
UTM = "EPSG:32640"  # Dubai's UTM zone
ORIGIN = from_origin(300000.0, 2780000.0, 0.5, 0.5)


def write_key(path: Path, key: dict) -> Path:
    """A key file of `name<TAB>value` (or colour) lines."""
    path.write_text("".join(f"{name}\t{v}\n" for name, v in key.items()), encoding="utf-8")
    return path


def read_tile(ref: str, window=None) -> tuple[np.ndarray, np.ndarray]:
    """RGB pixels (rows, cols, 3) and 16-bit label values (rows, cols) of a shared tile, read with
    rasterio (the decoder imagefit reads JPEGs with). `window`: (row, col, height, width)."""
    from rasterio.windows import Window

    w = None if window is None else Window(window[1], window[0], window[3], window[2])
    with rasterio.open(AERIAL / "3band" / f"{ref}.jpg") as ds:
        rgb = ds.read(window=w).transpose(1, 2, 0)
    with rasterio.open(AERIAL / "theme" / f"{ref}-theme.png") as ds:
        labels = ds.read(1, window=w)
    return np.ascontiguousarray(rgb), labels


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_geotiff(path: Path, array: np.ndarray, crs=UTM, transform=ORIGIN, nodata=None) -> Path:
    """A GeoTIFF of (rows, cols) or (rows, cols, bands) pixels."""
    bands = array[..., None] if array.ndim == 2 else array
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff", "height": bands.shape[0], "width": bands.shape[1], "count": bands.shape[2],
        "dtype": str(bands.dtype), "crs": crs, "transform": transform, "nodata": nodata,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(bands.transpose(2, 0, 1))
    return path


def polygonise(labels: np.ndarray, transform, path: Path, crs=UTM, to_crs=None) -> Path:
    """The label raster as polygons (rasterio.features.shapes) with a `theme` attribute (the class
    name, or the value as text when not in VALUES), written as a GeoPackage in `to_crs` (default `crs`)."""
    import pyogrio.raw
    import shapely
    from rasterio.features import shapes
    from rasterio.warp import transform_geom

    names = {v: k for k, v in VALUES.items()}
    geoms, themes = [], []
    for geom, value in shapes(labels.astype(np.int32), transform=transform):
        if to_crs is not None:
            geom = transform_geom(crs, to_crs, geom)
        geoms.append(shapely.geometry.shape(geom))
        themes.append(names.get(int(value), str(int(value))))
    wkb = shapely.to_wkb(np.array(geoms, dtype=object))
    fields = [np.array(themes, dtype=object)]
    pyogrio.raw.write(
        path, wkb, fields, ["theme"], geometry_type="Polygon", crs=to_crs or crs, driver="GPKG"
    )  # fmt: skip
    return path
