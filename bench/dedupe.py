"""Near-duplicate detection on the Dogs-vs-Cats photos with planted copies.

    python -m bench.dedupe [--planted 30]

Copies the 2,000 real photos (as links) into a scratch folder, plants three copies of randomly
chosen ones (re-saved as JPEG quality 70, resized to half, mirrored), runs `imagefit.dedupe`,
and prints the recall of planted copies and every group that is not a planted set.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bench._common import dogs_cats_files


def plant(files: list[Path], folder: Path, n: int, seed: int = 0) -> dict[Path, set[Path]]:
    """Link every file into `folder` and add three altered copies of `n` of them."""
    truth = {}
    for f in files:
        (folder / f.parent.parent.name / f.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / f.parent.parent.name / f.parent.name / f.name).symlink_to(f)
    rng = np.random.default_rng(seed)
    for f in rng.choice(files, n, replace=False):
        img = Image.open(f).convert("RGB")
        original = folder / f.parent.parent.name / f.parent.name / f.name
        copies = {folder / "planted" / f"{f.stem}.{kind}.jpg" for kind in ("q70", "half", "flip")}
        (folder / "planted").mkdir(exist_ok=True)
        img.save(folder / "planted" / f"{f.stem}.q70.jpg", quality=70)
        img.resize((img.width // 2, img.height // 2)).save(
            folder / "planted" / f"{f.stem}.half.jpg", quality=95
        )
        ImageOps.mirror(img).save(folder / "planted" / f"{f.stem}.flip.jpg", quality=95)
        truth[original] = copies | {original}
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planted", type=int, default=30)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    from imagefit.search.dedupe import dedupe

    folder = Path(tempfile.mkdtemp(prefix="imagefit-dedupe-"))
    truth = plant(dogs_cats_files("train") + dogs_cats_files("valid"), folder, args.planted)
    start = time.perf_counter()
    groups = [set(g) for g in dedupe(folder, threshold=args.threshold, progress=False)]
    seconds = time.perf_counter() - start
    found = sum(any(t <= g for g in groups) for t in truth.values())
    extra = [g for g in groups if not any(g <= t for t in truth.values())]
    print(
        f"{sum(len(t) for t in truth.values()) + 2000 - len(truth)} images, {len(truth)} planted sets: "
        f"{found}/{len(truth)} found whole (recall {found / len(truth):.3f}), {len(groups)} groups, "
        f"{seconds:.0f} s"
    )
    for g in extra:
        print("group that is not a planted set:", sorted(str(p.relative_to(folder)) for p in g))


if __name__ == "__main__":
    main()
