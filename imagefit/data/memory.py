"""Images given in memory (encoded bytes, PIL images, NumPy arrays) as upright 8-bit RGB pictures."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from imagefit.data.images import ImageReadError, max_pixels, open_image, open_image_bytes
from imagefit.data.pixels import scale_to_8bit, to_rgb

MEMORY_TYPES = (bytes, bytearray, memoryview, Image.Image, np.ndarray)


def is_in_memory(item: Any) -> bool:
    """True for an image held in memory rather than named by a path."""
    return isinstance(item, MEMORY_TYPES)


def picture(
    item: Any, name: str = "image", min_size: int | None = None, limit: int | None = None
) -> Image.Image:
    """`item` (bytes, a PIL image, an HxW or HxWxC array, or a file path) as an RGB PIL image.

    Arrays of 8-bit values are taken as they are, any other dtype is stretched to 0-255; a fourth
    channel is alpha. Raises ImageReadError naming `name` when the item cannot be a picture.
    """
    limit = max_pixels() if limit is None else limit
    if isinstance(item, bytes | bytearray | memoryview):
        return open_image_bytes(bytes(item), name, min_size, limit)
    if isinstance(item, str | os.PathLike):
        return open_image(item, min_size)
    if isinstance(item, Image.Image):
        _check_size(name, item.size, limit)
        return to_rgb(ImageOps.exif_transpose(item))
    if isinstance(item, np.ndarray):
        return _from_array(item, name, limit)
    raise ImageReadError(
        f"{name}: a {type(item).__name__} is not an image (give a path, bytes, PIL or array)"
    )


def _from_array(arr: np.ndarray, name: str, limit: int) -> Image.Image:
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or 0 in arr.shape:
        raise ImageReadError(f"{name}: an array of shape {arr.shape} is not an image (HxW, HxWx3 or HxWx4)")
    _check_size(name, (arr.shape[1], arr.shape[0]), limit)
    values = arr if arr.dtype == np.uint8 else scale_to_8bit(arr)
    return to_rgb(Image.fromarray(np.ascontiguousarray(values)))  # L, RGB or RGBA by shape


def _check_size(name: str, size: tuple[int, int], limit: int) -> None:
    if size[0] * size[1] > limit:
        raise ImageReadError(
            f"{name}: {size[0]} x {size[1]} = {size[0] * size[1]:,} pixels is more than the limit "
            f"of {limit:,}: shrink it",
            "too-large",
        )
