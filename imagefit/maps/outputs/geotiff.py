"""A map as a GeoTIFF of label values carrying the source's georeferencing and legend.

The GeoTIFF keeps the key's label values, as UInt16 (or Byte when every value and no-data fit in
one byte), because a map in the labels' own values compares directly with the label rasters, the
key file and a vector layer's attribute. Its colour table and attribute table are described in
`imagefit.maps.outputs.legend`; internal overviews use mode resampling so that zoomed-out views show
classes, never averages of label values. Beside it, the map's confidence is a Byte GeoTIFF on the
same grid (averaged overviews). Both are written block by block and finished as Cloud-Optimized
GeoTIFFs (tiled, overviews stored before the full resolution), so memory never holds a whole map.
"""

from __future__ import annotations

import tempfile
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from imagefit.cores import default_threads
from imagefit.data.atomic import write_text, write_with
from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.inputs.rasters import RasterInfo
from imagefit.maps.outputs.legend import aux_xml, colour_table, qgis_style
from imagefit.maps.outputs.theme_map import CONFIDENCE_NODATA, Region, ThemeMap

OVERVIEW_MIN = 128  # overviews halve the map down to about this many pixels on its longer side
CACHE_BYTES = 32 * 2**20  # GDAL's block cache while maps are written (its default: 5 % of the RAM)


def bounded_cache():
    """A rasterio environment whose GDAL block cache is CACHE_BYTES: blocks written (and the COG
    copy's reads) then hold that much memory at most, whatever the map's size. GDAL computes
    overviews and compresses the COG's blocks with the job's threads (`imagefit.cores`)."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=CACHE_BYTES, GDAL_NUM_THREADS=str(default_threads()))


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


class BandWriter:
    """One band on a region of a raster's grid, written window by window and finished as a Cloud-
    Optimized GeoTIFF: the windows go to a temporary tiled GeoTIFF beside `path`, its overviews are
    built, and GDAL's COG driver copies it (overviews before the full resolution, as the format wants)
    to a temporary name renamed to `path` once complete. Memory follows the windows, not the band."""

    def __init__(self, path: str | Path, source: RasterInfo, region: Region, dtype: str, nodata: int,
                 resampling, describe=None):  # fmt: skip
        from rasterio.windows import Window, transform

        grid = transform(Window(region.col, region.row, region.width, region.height), source.transform)
        self.path, self.resampling, self.describe = Path(path), resampling, describe
        self.region, self.dtype = region, dtype
        self.profile = {
            "driver": "GTiff", "height": region.height, "width": region.width, "count": 1,
            "dtype": dtype, "nodata": nodata, "tiled": True, "blockxsize": 256, "blockysize": 256,
            "crs": source.crs, "BIGTIFF": "IF_SAFER",
            "transform": grid,
        }  # fmt: skip
        self._stack = ExitStack()

    def __enter__(self) -> BandWriter:
        import rasterio
        import rasterio.errors

        self.path.parent.mkdir(parents=True, exist_ok=True)
        folder = self._stack.enter_context(
            tempfile.TemporaryDirectory(prefix=f".{self.path.name}.", dir=self.path.parent)
        )
        self._tmp = Path(folder) / "full.tif"
        with warnings.catch_warnings():  # a source without georeferencing gives a plain TIFF
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            self._ds = self._stack.enter_context(rasterio.open(self._tmp, "w", **self.profile))
        return self

    def write(self, values: np.ndarray, row: int, col: int) -> None:
        """Values (rows, cols) at (row, col) of the region."""
        from rasterio.windows import Window

        window = Window(col, row, values.shape[1], values.shape[0])
        self._ds.write(values.astype(self.dtype, copy=False), 1, window=window)

    def __exit__(self, *exc) -> bool:
        try:
            if exc[0] is None:
                self._finish()
        finally:
            self._stack.close()
        return False

    def _finish(self) -> None:
        import rasterio.shutil

        if self.describe is not None:
            self.describe(self._ds)
        factors = overview_factors(self.region.height, self.region.width)
        if factors:
            self._ds.build_overviews(factors, self.resampling)
        self._ds.close()
        options = {"compress": "deflate", "blocksize": 256, "overviews": "FORCE_USE_EXISTING"}
        options.update(BIGTIFF="IF_SAFER", num_threads=str(default_threads()))
        write_with(self.path, lambda tmp: rasterio.shutil.copy(self._tmp, tmp, driver="COG", **options))


class MapWriter:
    """A map's GeoTIFF in the key's label values, written block by block: a COG with the source's CRS
    and transform, a colour table and mode-resampled overviews (zoomed-out views show classes, never
    averages of label values); the classes as a raster attribute table (`.aux.xml`) and a QGIS style
    (`.qml`) beside it."""

    def __init__(self, path: str | Path, key: ThemeKey, source: RasterInfo, region: Region):
        from rasterio.enums import Resampling

        self.path, self.key = Path(path), key
        self.dtype, self.nodata = map_values(key)

        def describe(ds) -> None:
            ds.write_colormap(1, colour_table(key, self.nodata))
            ds.update_tags(1, **{f"class_{v}": name for name, v in zip(key.names, key.values, strict=True)})

        self.band = BandWriter(path, source, region, self.dtype, self.nodata, Resampling.mode, describe)

    def __enter__(self) -> MapWriter:
        self.band.__enter__()
        return self

    def write(self, index: np.ndarray, row: int, col: int) -> None:
        """Class indices (negative: no data) at (row, col) of the region."""
        self.band.write(self.key.decode(index, self.nodata), row, col)

    def __exit__(self, *exc) -> bool:
        self.band.__exit__(*exc)
        if exc[0] is None:
            write_text(self.path.with_name(self.path.name + ".aux.xml"), aux_xml(self.key))
            write_text(self.path.with_suffix(".qml"), qgis_style(self.key))
        return False


def confidence_writer(path: str | Path, source: RasterInfo, region: Region) -> BandWriter:
    """The map's confidence (round(255 * calibrated top class probability), 0 where the tile has no
    data) as a Byte COG on the map's grid, with averaged overviews."""
    from rasterio.enums import Resampling

    def describe(ds) -> None:
        ds.update_tags(1, meaning="round(255 * calibrated probability of the mapped class)")

    return BandWriter(path, source, region, "uint8", CONFIDENCE_NODATA, Resampling.average, describe)


def write_geotiff(theme_map: ThemeMap, key: ThemeKey, path: str | Path) -> Path:
    """A map held in memory written as `MapWriter` writes a streamed one."""
    with MapWriter(path, key, theme_map.source, theme_map.region) as writer:
        writer.write(theme_map.index, 0, 0)
    return Path(path)


def write_confidence(theme_map: ThemeMap, path: str | Path) -> Path:
    """The confidence of a map held in memory, written as `confidence_writer` writes a streamed one."""
    with confidence_writer(path, theme_map.source, theme_map.region) as writer:
        writer.write(theme_map.confidence, 0, 0)
    return Path(path)
