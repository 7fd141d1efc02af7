"""Shared fixtures and helpers: no network, private feature caches, tiny image folders, model and run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ["HF_HUB_OFFLINE"] = "1"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY_MODEL = "test_efficientnet"  # a timm test architecture: tiny, untrained, fast
TINY = ["--model", TINY_MODEL, "--weights", "none", "--engine", "torch", "-j", "0"]  # imagefit train flags

COLOURS = {"blue": (30, 60, 220), "red": (220, 40, 30), "green": (40, 200, 60)}


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["IMAGEFIT_CACHE"] = str(tmp_path_factory.mktemp("imagefit-cache"))


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A feature cache of this test alone (`pytestmark = pytest.mark.usefixtures("own_cache")`)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("IMAGEFIT_CACHE", str(cache))
    return cache


@pytest.fixture
def backbone():
    """The tiny test backbone, untrained, its weights seeded."""
    import torch

    from imagefit.models import create_backbone

    torch.manual_seed(0)
    return create_backbone(TINY_MODEL, weights="none")


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


def train_tiny_run(place: Path) -> Path:
    """PLACE/data (4 + 2 images per class) and PLACE/run trained on it by the CLI; PLACE/cache its cache."""
    from click.testing import CliRunner

    from imagefit.cli import cli

    os.environ["IMAGEFIT_CACHE"] = str(place / "cache")
    make_folder(place / "data", n_train=4, n_valid=2)
    result = CliRunner().invoke(cli, ["train", str(place / "data"), "--out", str(place / "run"), *TINY])
    assert result.exit_code == 0, result.output
    return place / "run"


_COGS_SEEN: set[Path] = set()


@pytest.fixture(autouse=True)
def _maps_are_valid_cogs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """After every maps test: each map and confidence GeoTIFF it wrote (X-map.tif, X-confidence.tif)
    is a valid Cloud-Optimized GeoTIFF by rio-cogeo's validation; a map carries a colour table."""
    yield
    if not request.module.__name__.rpartition(".")[2].startswith("test_maps"):
        return
    import rasterio
    from rio_cogeo.cogeo import cog_validate

    base = tmp_path_factory.getbasetemp()
    written = [p for pattern in ("*-map.tif", "*-confidence.tif") for p in base.rglob(pattern)]
    for path in sorted(set(written) - _COGS_SEEN):
        _COGS_SEEN.add(path)
        with open(path, "rb") as fh:
            if fh.read(4) not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
                continue  # not a TIFF: a test's stand-in for an earlier file
        valid, errors, _ = cog_validate(str(path), quiet=True)
        assert valid, f"{path} is not a valid COG: {errors}"
        if path.name.endswith("-map.tif"):
            with rasterio.open(path) as ds:
                assert ds.colormap(1), f"{path} has no colour table"
