"""A dataset folder holding every kind of bad input, generated on the spot, with the expected outcome.

`write_corpus(root)` builds DATA/train/<class>/ and DATA/valid/<class>/ of good images plus, in
train/, one file of each kind a real folder contains. It returns what imagefit must do with each
added file: 'trained' (read, perhaps converted) or the ImageReadError kind it is skipped with.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from tests.conftest import COLOURS, make_folder

_ORIENTATION = 0x0112


def _red(size=(48, 40), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.array(COLOURS["red"]) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(
        np.uint8
    )


def _jpeg_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_red(seed=seed)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_red(seed=seed)).save(buffer, "PNG")
    return buffer.getvalue()


def _converted(folder: Path) -> dict[str, str]:
    """Files that must be trained on after a conversion: name -> what they are."""
    rgb = _red()
    Image.fromarray(rgb).convert("L").save(folder / "grey.png")
    Image.fromarray(rgb).convert("1").save(folder / "bilevel.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(
        folder / "palette_t.png", transparency=0
    )
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.tif")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(folder / "deep16.png")
    tifffile.imwrite(folder / "float_grey.tif", rgb[..., 0].astype(np.float32) / 255.0)
    tifffile.imwrite(folder / "float_rgb.tif", rgb.astype(np.float32) / 255.0, photometric="rgb")
    tifffile.imwrite(folder / "rgb16.tif", rgb.astype(np.uint16) * 257, photometric="rgb")
    exif = Image.Exif()
    exif[_ORIENTATION] = 6
    Image.fromarray(rgb).save(folder / "rotated.jpg", exif=exif.tobytes())
    Image.fromarray(rgb).save(folder / "chat été 猫.jpg")
    Image.fromarray(rgb).save(folder / "with  spaces .jpg")
    Image.fromarray(rgb).save(folder / "SHOUTING.JPG")
    (folder / "png_named.jpg").write_bytes(_png_bytes(7))
    return {
        "grey.png": "grayscale",
        "bilevel.png": "black-and-white",
        "palette.png": "palette",
        "palette_t.png": "palette with transparency",
        "rgba.png": "RGBA",
        "cmyk.jpg": "CMYK JPEG",
        "cmyk.tif": "CMYK TIFF",
        "deep16.png": "16-bit PNG",
        "float_grey.tif": "float32 grayscale TIFF",
        "float_rgb.tif": "float32 RGB TIFF",
        "rgb16.tif": "16-bit RGB TIFF",
        "rotated.jpg": "EXIF orientation 6",
        "chat été 猫.jpg": "unicode name",
        "with  spaces .jpg": "spaces in the name",
        "SHOUTING.JPG": "upper-case extension",
        "png_named.jpg": "PNG content named .jpg",
    }


def _skipped(folder: Path) -> dict[str, str]:
    """Files that must be skipped: name -> the ImageReadError kind."""
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("a shopping list, not a picture\n" * 10)
    jpeg = _jpeg_bytes(1)
    (folder / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    png = _png_bytes(2)
    (folder / "cut.png").write_bytes(png[: len(png) - 40])
    Image.new("1", (10_000, 10_000)).save(folder / "bomb.png")  # 100 M pixels in a few kB
    os.symlink(folder / "gone.jpg", folder / "dangling.jpg")
    os.symlink(folder / "loop_b.jpg", folder / "loop_a.jpg")
    os.symlink(folder / "loop_a.jpg", folder / "loop_b.jpg")
    return {
        "empty.jpg": "empty",
        "notes.jpg": "not-image",
        "cut.jpg": "truncated",
        "cut.png": "truncated",
        "bomb.png": "too-large",
        "dangling.jpg": "unreadable",
        "loop_a.jpg": "unreadable",
        "loop_b.jpg": "unreadable",
    }


def _ignored(folder: Path) -> list[str]:
    """Files and links imagefit never reads as images."""
    (folder / "labels.csv").write_text("a,b\n")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    os.symlink(folder, folder / "self_loop")  # a folder link back to itself: must not loop forever
    return ["labels.csv"]


def write_corpus(root: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """DATA with good images and, in train/red/, every bad kind: (DATA, trained, skipped)."""
    make_folder(root, n_train=6, n_valid=3)
    folder = root / "train" / "red"
    trained = _converted(folder)
    skipped = _skipped(folder)
    _ignored(folder)
    return root, trained, skipped
