"""ImageNet top-5 of scikit-image's `chelsea` and `coffee` photos, with the network unreachable.

python bench/imagenet.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from skimage import data

from bench._common import offline_env


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="imagefit-bench-"))
    paths = []
    for name in ("chelsea", "coffee"):
        paths.append(folder / f"{name}.png")
        Image.fromarray(getattr(data, name)()).save(paths[-1])
    cmd = [sys.executable, "-m", "imagefit", "imagenet", *map(str, paths), "--json"]
    out = subprocess.run(cmd, env=offline_env(), check=True, capture_output=True, text=True).stdout
    for item in json.loads(out):
        top = ", ".join(f"{p['name']} {p['probability']:.3f}" for p in item["predictions"])
        print(f"{Path(item['path']).stem}: {top}")


if __name__ == "__main__":
    main()
