"""Pixel formats to 8-bit RGB: alpha laid on a background, 16-bit and float scaled, odd TIFFs read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WIDE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


class TooManyPixels(ValueError):
    """An image's header declares more pixels than the limit allows."""


def default_background() -> str:
    """$IMAGEFIT_BACKGROUND (white or black), else white."""
    return os.environ.get("IMAGEFIT_BACKGROUND", "white").strip().lower() or "white"


def background_colour(name: str | None) -> tuple[int, int, int]:
    """The RGB colour transparent pixels are laid on."""
    name = name or default_background()
    if name not in BACKGROUNDS:
        raise ValueError(f"background must be white or black, got {name!r}")
    return BACKGROUNDS[name]


def to_rgb(img: Image.Image, background: str | None = None) -> Image.Image:
    """`img` as 8-bit RGB: transparency composited on `background`, wide values scaled to 0-255."""
    if img.mode == "RGB":
        img.load()
        return img
    if img.mode in _WIDE_MODES:
        return Image.fromarray(scale_to_8bit(np.asarray(img))).convert("RGB")
    if img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background_colour(background), 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return img.convert("RGB")


def scale_to_8bit(values: np.ndarray) -> np.ndarray:
    """Stretch the finite values of an integer or float array to 0-255; NaN and infinities become 0."""
    arr = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(arr.shape, np.uint8)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    return np.where(finite, np.clip(np.round(scaled), 0, 255), 0).astype(np.uint8)


def read_tiff_array(path: str | os.PathLike, max_pixels: int) -> Image.Image:
    """A TIFF that Pillow cannot decode (float RGB, float64, float16, many bands) read with tifffile.

    The size in the header is checked against `max_pixels` before any pixel is read.
    """
    import tifffile

    with tifffile.TiffFile(Path(path)) as tif:
        page = tif.pages[0]
        if page.imagewidth * page.imagelength > max_pixels:
            raise TooManyPixels(f"{page.imagewidth} x {page.imagelength} pixels is more than {max_pixels:,}")
        arr = np.asarray(page.asarray())
    if arr.ndim == 3 and arr.shape[0] <= 4 < arr.shape[-1]:
        arr = np.moveaxis(arr, 0, -1)  # planar (bands first) to interleaved
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 1):
        grey = arr.reshape(arr.shape[:2])
        return Image.fromarray(_as_8bit(grey), mode="L").convert("RGB")
    if arr.ndim != 3 or arr.shape[-1] < 3:
        raise ValueError(f"a TIFF of shape {arr.shape} is not an image imagefit can use")
    return Image.fromarray(_as_8bit(arr[..., :3]), mode="RGB")


def _as_8bit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)  # as Pillow reads 16-bit RGB: by bit depth
    return scale_to_8bit(arr)
