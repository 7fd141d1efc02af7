"""Rebuild the photos and the aerial image that `imagefit demo` ships, from ../shared/data.

    python -m bench.demo_data [--quality 80] [--train 16] [--valid 6]

Writes imagefit/demo/data/photos/{train,valid}/<class>/ (the first images of six UC Merced Land Use
classes, re-encoded as JPEG) and imagefit/demo/data/aerial/ (one Dubai image with its label raster
and key, in the seeds' layout), then prints the total size: the package keeps it under 3 MB.
The licences are in imagefit/demo/data/README.md.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from bench._common import DATA, TILES

OUT = Path(__file__).resolve().parents[1] / "imagefit" / "demo" / "data"
CLASSES = ("agricultural", "airplane", "beach", "buildings", "forest", "harbor")
AERIAL = "T2P07"  # 509 x 544 px, all six classes of the key
LIMIT = 3 * 1024 * 1024


def photos(quality: int, n_train: int, n_valid: int) -> None:
    """The first n_train / n_valid images (by name) of each class, re-encoded at `quality`."""
    for split, n in (("train", n_train), ("valid", n_valid)):
        for name in CLASSES:
            folder = OUT / "photos" / split / name
            folder.mkdir(parents=True)
            for path in sorted((DATA / "ucmerced" / split / name).glob("*.jpg"))[:n]:
                with Image.open(path) as img:
                    img.convert("RGB").save(folder / path.name, quality=quality, optimize=True)


def aerial() -> None:
    """The image as published (a JPEG), its 16-bit label raster and the key, copied unchanged."""
    for sub, name in (("3band", f"{AERIAL}.jpg"), ("theme", f"{AERIAL}-theme.png"), (".", "key-theme.txt")):
        target = OUT / "aerial" / sub / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TILES / sub / name, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--train", type=int, default=16)
    parser.add_argument("--valid", type=int, default=6)
    args = parser.parse_args()
    if not (DATA / "ucmerced").is_dir():
        raise SystemExit(f"real data not found at {DATA}")
    for sub in ("photos", "aerial"):
        shutil.rmtree(OUT / sub, ignore_errors=True)
    photos(args.quality, args.train, args.valid)
    aerial()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{OUT}: {total / 1e6:.2f} MB ({total} bytes)")
    if total > LIMIT:
        raise SystemExit(f"over the package's limit of {LIMIT} bytes: lower --quality or the counts")


if __name__ == "__main__":
    main()
