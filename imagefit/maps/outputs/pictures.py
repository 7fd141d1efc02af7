"""A map as pictures: a coloured PNG figure with a legend of the classes, or one pixel per pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_with
from imagefit.figures import pyplot, save_figure
from imagefit.maps.outputs.legend import class_colours

NODATA_COLOUR = (0, 0, 0)


def colourise(index: np.ndarray, n: int) -> np.ndarray:
    """An RGB picture (rows, cols, 3) of class indices; no-data (negative) black."""
    palette = np.vstack([class_colours(n), np.array([NODATA_COLOUR], np.uint8)])
    return palette[np.where(index < 0, n, index)]


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
