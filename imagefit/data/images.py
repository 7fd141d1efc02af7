"""Finding image files and opening them as RGB pictures, small when JPEG allows it."""

from __future__ import annotations

import math
import os
from pathlib import Path

from PIL import Image, ImageOps

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)


class ImageReadError(Exception):
    """An image file could not be decoded; the message names the file and the reason."""


def is_image_file(path: Path) -> bool:
    """True when the file name has an image extension (the content is checked at decode time)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(root: str | os.PathLike) -> list[Path]:
    """All image files under `root` (or `root` itself if it is a file), in sorted order."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in filenames if is_image_file(Path(f)))
    return sorted(found)


def open_image(path: str | os.PathLike, min_size: int | None = None) -> Image.Image:
    """Decode `path` as an upright RGB image.

    With `min_size`, a JPEG is decoded at the smallest DCT scale whose shorter side is still
    at least `min_size` (Pillow's draft mode), which is several times faster for large photos.
    """
    try:
        with Image.open(path) as img:
            if min_size is not None and img.format == "JPEG":
                scale = min(img.size) / min_size
                if scale >= 2:
                    img.draft("RGB", (math.ceil(img.size[0] / scale), math.ceil(img.size[1] / scale)))
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"{path}: {_reason(exc)}") from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        img.load()
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _scale_to_8bit(img).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _scale_to_8bit(img: Image.Image) -> Image.Image:
    import numpy as np

    arr = np.asarray(img, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    return Image.fromarray(arr.astype("uint8"), mode="L")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    if "cannot identify image file" in text:
        return "not an image Pillow can read"
    return text
