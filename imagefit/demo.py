"""The built-in demo: a small CNN from scratch beside transfer on scikit-learn's digits, and ImageNet
answers on the photos scikit-image ships. Offline, a few minutes on two cores."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits

from imagefit.errors import DataError
from imagefit.inference import imagenet
from imagefit.train import TrainResult, train

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")  # skimage.data sample photos
DIGIT_PIXELS = 28
WHY_SCRATCH = (
    "why: ImageNet features describe photos of objects; an 8x8 digit blown up to 288 px is a few "
    "blurred strokes unlike them, so a small CNN learnt on the digits themselves wins here, while on "
    "photos (imagefit train DATA) the transferred features win."
)


@dataclass
class DemoResult:
    """The two digit runs, the ImageNet answers on the sample photos, and seconds per part."""

    scratch: TrainResult
    transfer: TrainResult | None
    photos: list[dict]
    seconds: dict[str, float] = field(default_factory=dict)


def demo(
    out: str | Path = "demo", epochs: int = 12, transfer: bool = True, progress: bool = True
) -> DemoResult:
    """Write the digits under OUT/digits, train OUT/scratch and OUT/transfer, top-5 of OUT/photos."""
    out = Path(out)
    data = write_digits(out / "digits", size=DIGIT_PIXELS)
    seconds = {}
    start = time.perf_counter()
    scratch = digits_scratch(data, out / "scratch", epochs, progress)
    seconds["scratch"] = time.perf_counter() - start
    result = None
    if transfer:
        start = time.perf_counter()
        result = train(data, out=out / "transfer", progress=progress)
        seconds["transfer"] = time.perf_counter() - start
    start = time.perf_counter()
    photos = imagenet(write_photos(out / "photos"), top=5, progress=False)
    seconds["imagenet"] = time.perf_counter() - start
    return DemoResult(scratch, result, photos, seconds)


def digits_scratch(data: Path, out: Path, epochs: int = 12, progress: bool = True) -> TrainResult:
    """The seeds' `larger_model` from scratch at 28x28x1 (Adam, one-cycle, as bench.scratch_digits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small runs faster on one thread than on two busy ones
    try:
        return train(
            data,
            strategy="scratch",
            out=out,
            workers=0,
            progress=progress,
            arch="larger_model",
            epochs=epochs,
            lr=3e-3,
            optimizer="adam",
            batch_size=32,
            image_size=DIGIT_PIXELS,
        )
    finally:
        torch.set_num_threads(threads)


def write_photos(folder: str | Path, names: tuple[str, ...] = PHOTOS) -> list[Path]:
    """Save scikit-image's sample photos `names` as PNGs in FOLDER; returns their paths."""
    from skimage import data as samples

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.png"
        if not path.is_file():
            Image.fromarray(getattr(samples, name)()).save(path)
        paths.append(path)
    return paths


def write_digits(root: str | Path, size: int = 32, valid_every: int = 5) -> Path:
    """Write scikit-learn's 1,797 digits as PNGs in ROOT/train/<digit>/ and ROOT/valid/<digit>/.

    Every `valid_every`-th image of each class goes to valid/. Returns `root`. The files are
    written into a hidden folder renamed to `root` at the end, so a killed demo leaves no half set.
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        if not (root / "train").is_dir():
            raise DataError(f"{root} exists and is not a digits dataset: choose another --out")
        return root
    partial = root.with_name(f".{root.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a demo killed while writing
    digits = load_digits()
    seen: dict[int, int] = {}
    for pixels, label in zip(digits.images, digits.target, strict=True):
        n = seen.get(int(label), 0)
        seen[int(label)] = n + 1
        split = "valid" if n % valid_every == valid_every - 1 else "train"
        folder = partial / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        gray = (255 - pixels * (255 / 16)).clip(0, 255).astype(np.uint8)  # dark ink on white
        Image.fromarray(gray, "L").resize((size, size), Image.BICUBIC).save(folder / f"{n:04d}.png")
    if root.exists():
        root.rmdir()  # empty, checked above
    partial.rename(root)
    return root
