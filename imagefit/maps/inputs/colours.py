"""Colour labels: `#RRGGBB` colours of a key, and RGB or palette masks turned into class indices."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from imagefit.errors import DataError

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
UNKNOWN = -2  # class index of colours neither in the key nor ignored


def parse_colour(text: str) -> str | None:
    """`#RRGGBB` (upper case) of a colour written `#rrggbb` or `rrggbb`; None if it is not one."""
    m = _HEX.match(text.strip())
    return f"#{m[1].upper()}" if m else None


def pack(colour: str) -> int:
    """A colour `#RRGGBB` as the integer 0xRRGGBB."""
    return int(colour[1:], 16)


def packed_pixels(rgb: np.ndarray) -> np.ndarray:
    """Pixels (rows, cols, 3) uint8 as integers 0xRRGGBB (rows, cols)."""
    rgb = rgb.astype(np.int32, copy=False)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def colour_indices(
    rgb: np.ndarray, colours: tuple[str, ...], ignore: str | None, origin: str | Path, source: str
) -> np.ndarray:
    """Class indices (int16; -1 where `ignore`) of a colour mask; colours outside the key raise."""
    packed = packed_pixels(rgb)
    keys = np.array([pack(c) for c in colours], np.int64)
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], packed), 0, len(keys) - 1)
    index = np.where(keys[order][pos] == packed, order[pos], UNKNOWN).astype(np.int16)
    if ignore is not None:
        index[packed == pack(ignore)] = -1
    unknown = index == UNKNOWN
    if unknown.any():
        raise DataError(_unknown_message(origin, packed[unknown], source))
    return index


def _unknown_message(origin, packed: np.ndarray, source: str) -> str:
    found, counts = np.unique(packed, return_counts=True)
    top = np.argsort(-counts)[:5]
    listed = ", ".join(f"#{int(found[i]):06X} ({int(counts[i])} pixels)" for i in top)
    more = f" and {len(found) - len(top)} more" if len(found) > len(top) else ""
    first = f"#{int(found[top[0]]):06X}"
    hint = f"add them to {source}" if source else "add them to the key"
    return (
        f"{origin}: colours not in the key: {listed}{more}: {hint}, "
        f"or pass --ignore '{first}' to leave those pixels out"
    )


def palette_rgb(ds, band: np.ndarray) -> np.ndarray:
    """The RGB pixels (rows, cols, 3) of a palette band, through the raster's colour map."""
    table = np.zeros((256, 3), np.uint8)
    for i, colour in ds.colormap(1).items():
        if 0 <= i < 256:
            table[i] = colour[:3]
    return table[band]
