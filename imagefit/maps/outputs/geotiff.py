"""A map as a GeoTIFF of label values carrying the source's georeferencing and legend.

The GeoTIFF keeps the key's label values, as UInt16 (or Byte when every value and no-data fit in
one byte), because a map in the labels' own values compares directly with the label rasters, the
key file and a vector layer's attribute. Its colour table and attribute table are described in
`imagefit.maps.outputs.legend`; internal overviews use mode resampling so that zoomed-out views show
classes, never averages of label values. Beside it, the map's confidence is a Byte GeoTIFF on the
same grid (averaged overviews).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from imagefit.data.atomic import write_text, write_with
from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.outputs.legend import aux_xml, colour_table, qgis_style
from imagefit.maps.outputs.theme_map import CONFIDENCE_NODATA, ThemeMap

OVERVIEW_MIN = 128  # overviews halve the map down to about this many pixels on its longer side


def map_values(key: ThemeKey) -> tuple[str, int]:
    """The raster type and no-data value of a map in the key's label values: Byte if they fit, else UInt16."""
    values = set(key.values)
    if max(values) < 255:
        return "uint8", 0 if 0 not in values else 255
    return "uint16", key.nodata()


def overview_factors(height: int, width: int) -> list[int]:
    """2, 4, 8, ... while the overview's longer side stays at least OVERVIEW_MIN pixels."""
    factors, f = [], 2
    while max(height, width) // f >= OVERVIEW_MIN:
        factors.append(f)
        f *= 2
    return factors


def write_geotiff(theme_map: ThemeMap, key: ThemeKey, path: str | Path) -> Path:
    """Label values as a tiled, compressed GeoTIFF with the source's CRS and transform, a colour table,
    mode-resampled internal overviews; the classes as a raster attribute table (`.aux.xml`) and a
    QGIS style (`.qml`) beside it."""
    from rasterio.enums import Resampling

    dtype, nodata = map_values(key)
    values = key.decode(theme_map.index, nodata).astype(dtype)

    def describe(ds) -> None:
        ds.write_colormap(1, colour_table(key, nodata))
        ds.update_tags(1, **{f"class_{v}": name for name, v in zip(key.names, key.values, strict=True)})

    path = Path(path)
    _write_band(theme_map, values, nodata, path, Resampling.mode, describe)
    write_text(path.with_name(path.name + ".aux.xml"), aux_xml(key))
    write_text(path.with_suffix(".qml"), qgis_style(key))
    return path


def write_confidence(theme_map: ThemeMap, path: str | Path) -> Path:
    """The map's confidence (round(255 * calibrated top class probability), 0 where the tile has no
    data) as a Byte GeoTIFF on the map's grid, tiled and compressed as the map is."""
    from rasterio.enums import Resampling

    def describe(ds) -> None:
        ds.update_tags(1, meaning="round(255 * calibrated probability of the mapped class)")

    path = Path(path)
    _write_band(theme_map, theme_map.confidence, CONFIDENCE_NODATA, path, Resampling.average, describe)
    return path


def _write_band(theme_map: ThemeMap, values, nodata: int, path: Path, resampling, describe) -> None:
    """One band of the map's region, with the source's CRS and transform, and internal overviews."""
    import rasterio
    import rasterio.errors
    from rasterio.windows import Window, transform

    region, source = theme_map.region, theme_map.source
    profile = {
        "driver": "GTiff", "height": region.height, "width": region.width, "count": 1,
        "dtype": values.dtype.name, "nodata": nodata, "compress": "deflate", "tiled": True,
        "blockxsize": 256, "blockysize": 256, "crs": source.crs,
        "transform": transform(Window(region.col, region.row, region.width, region.height), source.transform),
    }  # fmt: skip

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():  # a source without georeferencing gives a plain TIFF
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            ds = rasterio.open(tmp, "w", **profile)
        with ds:
            ds.write(values, 1)
            describe(ds)
            factors = overview_factors(region.height, region.width)
            if factors:
                ds.build_overviews(factors, resampling)
                ds.update_tags(ns="rio_overview", resampling=resampling.name)

    write_with(path, write)
