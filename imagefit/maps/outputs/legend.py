"""The legend a GIS reads from a map raster: class colours, colour table, attribute table, QGIS style.

A map GeoTIFF keeps the key's own label values (so it compares directly with the label rasters,
the key file and a vector layer's attribute) and carries, for GIS programs:

- an embedded colour table (GDAL allows one on Byte and UInt16 GeoTIFF bands; a UInt16 table
  always holds 65536 entries, a Byte one 256), the no-data entry transparent: every GDAL-based
  program draws the classes in their colours;
- a raster attribute table (Value, Class, Red, Green, Blue) in the `.aux.xml` beside it, and inside
  the VRT mosaic: GDAL reads it as the band's default RAT, and QGIS 3.30 and later build a paletted
  legend from it first (one entry per class, by name);
- a QGIS style (`.qml` of the same name): QGIS loads it as the layer's default style, so every
  QGIS 3 version shows one legend entry per class, by name, in the key's colour.

Why all three: checked with QGIS 3.22 (Debian 12), a colour table alone gives a paletted layer
whose legend lists every table entry labelled by its number (65536 rows for UInt16 values, 256
for Byte class indices), so writing class indices as Byte would not have given a readable legend
either, and would have lost the key's values; the `.qml` beside the map gave the 6 named classes.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import numpy as np

from imagefit.maps.inputs.key import ThemeKey

RGBA = tuple[int, int, int, int]
TRANSPARENT: RGBA = (0, 0, 0, 0)
# matplotlib's categorical palettes: tab10, and tab20 (each tab10 colour followed by a lighter one)
TAB10 = ["1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf"]
LIGHT = ["aec7e8", "ffbb78", "98df8a", "ff9896", "c5b0d5", "c49c94", "f7b6d2", "c7c7c7", "dbdb8d", "9edae5"]


def key_colours(key: ThemeKey) -> np.ndarray:
    """An RGB colour (uint8) per class: the key's own `#RRGGBB` colours if it has them, else tab10/tab20."""
    own = getattr(key, "colours", ())
    return rgb(own) if own else class_colours(len(key.names))


def class_colours(n: int) -> np.ndarray:
    """A distinct RGB colour (uint8) per class: matplotlib's tab10 up to ten classes, else tab20
    (repeated beyond twenty), without loading matplotlib (a map written needs its colour table)."""
    palette = TAB10 if n <= 10 else [c for pair in zip(TAB10, LIGHT, strict=True) for c in pair]
    return rgb([palette[k % len(palette)] for k in range(n)])


def rgb(colours) -> np.ndarray:
    """`#RRGGBB` (or `RRGGBB`) colours as an (n, 3) uint8 array."""
    return np.array([[int(c.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)] for c in colours], np.uint8)


def colour_table(key: ThemeKey, nodata: int) -> dict[int, RGBA]:
    """Label value -> RGBA of each class, and the no-data value transparent."""
    table = {int(v): (*map(int, rgb), 255) for v, rgb in zip(key.values, key_colours(key), strict=True)}
    table[int(nodata)] = TRANSPARENT
    return table


def attribute_table_xml(key: ThemeKey, indent: str = "    ") -> str:
    """A GDAL raster attribute table (thematic: Value, Class, Red, Green, Blue) as PAM/VRT XML."""
    fields = [("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8)]
    lines = [f'{indent}<GDALRasterAttributeTable tableType="thematic">']
    for i, (name, kind, usage) in enumerate(fields):
        lines.append(
            f'{indent}  <FieldDefn index="{i}"><Name>{name}</Name><Type>{kind}</Type>'
            f"<Usage>{usage}</Usage></FieldDefn>"
        )
    for row, (name, value, rgb) in enumerate(zip(key.names, key.values, key_colours(key), strict=True)):
        cells = "".join(f"<F>{x}</F>" for x in (value, escape(name), *map(int, rgb)))
        lines.append(f'{indent}  <Row index="{row}">{cells}</Row>')
    lines.append(f"{indent}</GDALRasterAttributeTable>")
    return "\n".join(lines)


def aux_xml(key: ThemeKey) -> str:
    """The `.aux.xml` (GDAL PAM) text that gives band 1 of a map raster its attribute table."""
    body = attribute_table_xml(key, "    ")
    return f'<PAMDataset>\n  <PAMRasterBand band="1">\n{body}\n  </PAMRasterBand>\n</PAMDataset>\n'


def colour_table_xml(table: dict[int, RGBA], indent: str = "    ") -> str:
    """A VRT `<ColorTable>` with an entry for every value from 0 to the largest in `table`."""
    entries = [TRANSPARENT] * (max(table) + 1)
    for value, rgba in table.items():
        entries[value] = rgba
    rows = "\n".join(f'{indent}  <Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>' for r, g, b, a in entries)
    return f"{indent}<ColorTable>\n{rows}\n{indent}</ColorTable>"


def qgis_style(key: ThemeKey) -> str:
    """A QGIS layer style (.qml): a paletted renderer with one named entry per class of the key."""
    entries = "\n".join(
        f'        <paletteEntry value="{v}" color="#{r:02x}{g:02x}{b:02x}" alpha="255" '
        f'label="{escape(name, {chr(34): "&quot;"})}"/>'
        for name, v, (r, g, b) in zip(key.names, key.values, key_colours(key).tolist(), strict=True)
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.22" styleCategories="Symbology">\n  <pipe>\n'
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1">\n'
        f"      <rasterTransparency/>\n      <colorPalette>\n{entries}\n      </colorPalette>\n"
        "    </rasterrenderer>\n  </pipe>\n</qgis>\n"
    )
