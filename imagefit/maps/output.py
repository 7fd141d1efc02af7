"""Map outputs: a GeoTIFF of label values carrying the source's georeferencing, and a coloured PNG."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_with
from imagefit.figures import pyplot, save_figure
from imagefit.maps.key import ThemeKey
from imagefit.maps.predict import ThemeMap

NODATA_COLOUR = (0, 0, 0)


def class_colours(n: int) -> np.ndarray:
    """A distinct RGB colour (uint8) per class, from matplotlib's tab10/tab20."""
    cmap = pyplot().get_cmap("tab10" if n <= 10 else "tab20")
    return (np.array([cmap(k % cmap.N)[:3] for k in range(n)]) * 255).round().astype(np.uint8)


def colourise(index: np.ndarray, n: int) -> np.ndarray:
    """An RGB picture (rows, cols, 3) of class indices; no-data (negative) black."""
    palette = np.vstack([class_colours(n), np.array([NODATA_COLOUR], np.uint8)])
    return palette[np.where(index < 0, n, index)]


def write_geotiff(theme_map: ThemeMap, key: ThemeKey, path: str | Path) -> Path:
    """Label values (uint16, the key's) as a tiled, compressed GeoTIFF with the source's CRS and transform."""
    import rasterio
    import rasterio.errors
    from rasterio.windows import Window, transform

    region, source = theme_map.region, theme_map.source
    nodata = key.nodata()
    profile = {
        "driver": "GTiff", "height": region.height, "width": region.width, "count": 1,
        "dtype": "uint16", "nodata": nodata, "compress": "deflate", "tiled": True,
        "blockxsize": 256, "blockysize": 256, "crs": source.crs,
        "transform": transform(Window(region.col, region.row, region.width, region.height), source.transform),
    }  # fmt: skip
    values = key.decode(theme_map.index, nodata)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():  # a source without georeferencing gives a plain TIFF
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            ds = rasterio.open(tmp, "w", **profile)
        with ds:
            ds.write(values, 1)
            ds.update_tags(1, **{f"class_{v}": name for name, v in zip(key.names, key.values, strict=True)})

    path = Path(path)
    write_with(path, write)
    return path


def save_map_png(index: np.ndarray, classes: list[str], path: str | Path, title: str = "") -> Path:
    """The map in colour with a legend of the classes (and no-data), as a PNG figure."""
    plt = pyplot()
    from matplotlib.patches import Patch

    colours = class_colours(len(classes)) / 255
    height, width = index.shape
    scale = 10 / max(height, width)
    fig, ax = plt.subplots(figsize=(max(4.0, width * scale) + 3, max(3.0, height * scale)))
    ax.imshow(colourise(index, len(classes)), interpolation="nearest")
    ax.axis("off")
    handles = [Patch(color=c, label=name) for c, name in zip(colours, classes, strict=True)]
    if (index < 0).any():
        handles.append(Patch(color=np.array(NODATA_COLOUR) / 255, label="no data"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def save_index_png(index: np.ndarray, n: int, path: str | Path) -> Path:
    """The map in colour at full resolution, one pixel per pixel (no legend)."""
    from PIL import Image

    picture = Image.fromarray(colourise(index, n))
    write_with(path, lambda p: picture.save(p, format="PNG"))
    return Path(path)
