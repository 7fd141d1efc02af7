"""A VRT mosaic of map GeoTIFFs: one virtual raster, each map at its georeferenced place.

rasterio has no mosaic VRT builder, so the GDAL VRT XML is written here: the union of the maps'
extents at the finest of their pixel sizes, one source per map (its no-data value left
transparent, so overlapping maps do not blank each other), the key's colour table and attribute
table on the band. Paths are relative to the VRT, so the folder can move.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from imagefit.data.atomic import write_text
from imagefit.errors import DataError
from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.inputs.rasters import open_raster
from imagefit.maps.outputs.legend import attribute_table_xml, colour_table, colour_table_xml, qgis_style

_GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16"}


@dataclass
class _Map:
    path: Path
    width: int
    height: int
    dtype: str
    nodata: float | None
    crs: object | None
    transform: object


def mosaic_problem(maps: list[Path]) -> str:
    """Why the maps cannot make one mosaic ('' when they can): no georeferencing, rotation, mixed CRSs."""
    if not maps:
        raise DataError("a mosaic needs at least one map: no tile was mapped")
    infos = [_read(p) for p in maps]
    for m in infos:
        if m.crs is None:
            return f"{m.path.name} has no georeferencing (its tile had none)"
        if m.transform.b or m.transform.d or m.transform.e >= 0:
            return f"{m.path.name} is rotated or not north-up"
    crs = {m.crs.to_wkt() for m in infos}
    if len(crs) > 1:
        names = ", ".join(sorted({m.crs.to_string() for m in infos}))
        return f"the maps are in {len(crs)} different CRSs ({names})"
    return ""


def write_mosaic(maps: list[Path], path: str | Path, key: ThemeKey) -> Path:
    """Write a VRT of the maps (which must all be georeferenced, north-up and in one CRS) at `path`."""
    problem = mosaic_problem(maps)
    if problem:
        raise DataError(f"cannot build the mosaic {path}: {problem}")
    path = Path(path)
    infos = [_read(p) for p in maps]
    res_x = min(m.transform.a for m in infos)
    res_y = min(-m.transform.e for m in infos)
    left = min(m.transform.c for m in infos)
    top = max(m.transform.f for m in infos)
    right = max(m.transform.c + m.width * m.transform.a for m in infos)
    bottom = min(m.transform.f + m.height * m.transform.e for m in infos)
    width, height = math.ceil((right - left) / res_x - 1e-6), math.ceil((top - bottom) / res_y - 1e-6)
    first = infos[0]
    nodata = int(first.nodata if first.nodata is not None else 0)
    head = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(first.crs.to_wkt())}</SRS>',
        f"  <GeoTransform>{left!r}, {res_x!r}, 0.0, {top!r}, 0.0, {-res_y!r}</GeoTransform>",
        f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(first.dtype, "UInt16")}" band="1">',
        f"    <NoDataValue>{nodata}</NoDataValue>",
        "    <ColorInterp>Palette</ColorInterp>",
        colour_table_xml(colour_table(key, nodata)),
        attribute_table_xml(key),
    ]
    sources = [_source(m, path.parent, left, top, res_x, res_y) for m in infos]
    text = "\n".join([*head, *sources, "  </VRTRasterBand>", "</VRTDataset>"]) + "\n"
    write_text(path, text)
    write_text(path.with_suffix(".qml"), qgis_style(key))
    return path


def _read(path: Path) -> _Map:
    with open_raster(path) as ds:
        return _Map(Path(path), ds.width, ds.height, ds.dtypes[0], ds.nodata, ds.crs, ds.transform)


def _source(m: _Map, folder: Path, left: float, top: float, res_x: float, res_y: float) -> str:
    t = m.transform
    x0, y0 = round((t.c - left) / res_x), round((top - t.f) / res_y)
    w, h = round(m.width * t.a / res_x), round(m.height * -t.e / res_y)
    name = escape(os.path.relpath(m.path.resolve(), folder.resolve()))
    nodata = f"      <NODATA>{int(m.nodata)}</NODATA>\n" if m.nodata is not None else ""
    return (
        "    <ComplexSource>\n"
        f'      <SourceFilename relativeToVRT="1">{name}</SourceFilename>\n'
        "      <SourceBand>1</SourceBand>\n"
        f'      <SourceProperties RasterXSize="{m.width}" RasterYSize="{m.height}" '
        f'DataType="{_GDAL_TYPES.get(m.dtype, "UInt16")}" BlockXSize="256" BlockYSize="256"/>\n'
        f'      <SrcRect xOff="0" yOff="0" xSize="{m.width}" ySize="{m.height}"/>\n'
        f'      <DstRect xOff="{x0}" yOff="{y0}" xSize="{w}" ySize="{h}"/>\n'
        f"{nodata}"
        "    </ComplexSource>"
    )
