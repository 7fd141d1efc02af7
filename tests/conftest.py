"""Shared fixtures: no network, a private feature cache, tiny generated image folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ["HF_HUB_OFFLINE"] = "1"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY_MODEL = "test_efficientnet"  # a timm test architecture: tiny, untrained, fast

COLOURS = {"blue": (30, 60, 220), "red": (220, 40, 30), "green": (40, 200, 60)}


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["IMAGEFIT_CACHE"] = str(tmp_path_factory.mktemp("imagefit-cache"))


def write_image(path: Path, colour: tuple[int, int, int], seed: int, size=(48, 40)) -> Path:
    """A noisy colour field with a darker square: distinct per class, different per image."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255)
    y, x = rng.integers(0, size[1] // 2), rng.integers(0, size[0] // 2)
    pixels[y : y + size[1] // 3, x : x + size[0] // 3] *= 0.5
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def make_folder(root: Path, classes=("blue", "red"), n_train=10, n_valid=4, ext=".jpg") -> Path:
    """DATA/train/<class>/ and DATA/valid/<class>/ of generated images."""
    seed = 0
    for split, n in (("train", n_train), ("valid", n_valid)):
        for name in classes:
            for i in range(n):
                seed += 1
                write_image(root / split / name / f"{name}_{i:02d}{ext}", COLOURS[name], seed)
    return root


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "data")
