"""Small generated tile folders: colour-coded classes in bands, labels as 16-bit PNG, a key file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

KEY = {"Building": 1000, "Land": 2000, "Water": 5000}
COLOURS = {1000: (200, 60, 50), 2000: (190, 170, 120), 5000: (40, 80, 200)}


def label_raster(height: int, width: int, seed: int) -> np.ndarray:
    """Blobs of the key's values on a land background: squares of buildings, a river of water."""
    rng = np.random.default_rng(seed)
    labels = np.full((height, width), 2000, np.uint16)
    for _ in range(max(1, height * width // 900)):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        labels[y : y + rng.integers(6, 16), x : x + rng.integers(6, 16)] = 1000
    river = width // 3 + rng.integers(-3, 4)
    labels[:, river : river + 9] = 5000
    return labels


def rgb_of(labels: np.ndarray, seed: int) -> np.ndarray:
    """An image whose colour follows the labels, with noise."""
    rng = np.random.default_rng(seed + 1000)
    rgb = np.zeros((*labels.shape, 3), np.float32)
    for value, colour in COLOURS.items():
        rgb[labels == value] = colour
    rgb += rng.normal(0, 18, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_tiles(root: Path, refs=("A1", "A2", "B1"), size=(60, 80), ext=".png", key=None) -> Path:
    """TILES/3band/<ref><ext>, TILES/theme/<ref>-theme.png (16 bit) and TILES/key-theme.txt."""
    (root / "3band").mkdir(parents=True, exist_ok=True)
    (root / "theme").mkdir(parents=True, exist_ok=True)
    for i, ref in enumerate(refs):
        labels = label_raster(*size, seed=i)
        Image.fromarray(rgb_of(labels, i)).save(root / "3band" / f"{ref}{ext}")
        write_labels(root / "theme" / f"{ref}-theme.png", labels)
    key = KEY if key is None else key
    (root / "key-theme.txt").write_text("".join(f"{n}\t{v}\n" for n, v in key.items()), encoding="utf-8")
    return root


def write_labels(path: Path, labels: np.ndarray) -> None:
    """A 16-bit grey PNG of label values."""
    Image.fromarray(labels.astype(np.uint16)).save(path)


TINY_MAP_TRAIN = ["--patch", "12", "--model", "conv8@3-pool2-dense16", "--epochs", "2", "--steps", "25",
                  "--batch-size", "32"]  # fmt: skip


def train_tiny_map_run(root: Path) -> tuple[Path, Path, str]:
    """Tiles A1, A2, B1 under ROOT/tiles and a tiny map run trained on them by the CLI in ROOT/run:
    (tiles, run, the command's output)."""
    from click.testing import CliRunner

    from imagefit.cli import cli

    tiles = make_tiles(root / "tiles", refs=("A1", "A2", "B1"), size=(70, 90))
    args = ["map-train", str(tiles), "--train", "A1,A2", "--valid", "B1", "--out", str(root / "run")]
    result = CliRunner().invoke(cli, ["-q", *args, *TINY_MAP_TRAIN])
    assert result.exit_code == 0, result.output
    return tiles, root / "run", result.output
