"""scikit-learn's handwritten 8x8 digits as a class-folder dataset, for the scratch benchmarks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def write_digits(root: str | Path, size: int = 32, valid_every: int = 5) -> Path:
    """Write scikit-learn's 1,797 digits as PNGs in ROOT/train/<digit>/ and ROOT/valid/<digit>/.

    Every `valid_every`-th image of each class goes to valid/. Returns `root`. The files are
    written into a hidden folder renamed to `root` at the end, so a killed run leaves no half set.
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        if not (root / "train").is_dir():
            raise SystemExit(f"{root} exists and is not a digits dataset: choose another folder")
        return root
    partial = root.with_name(f".{root.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while writing
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
