"""Files and folders named on a command line, expanded into image paths."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from imagefit.data.images import is_image_file, list_images
from imagefit.errors import DataError


def collect_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into image paths; a missing path is an error."""
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if not item.exists():
            raise DataError(f"{item} does not exist: give image files or folders of images")
        if item.is_dir():
            found = list_images(item)
            if not found:
                raise DataError(f"{item} holds no image files (.jpg, .png, ...)")
            paths.extend(found)
        elif is_image_file(item):
            paths.append(item)
        else:
            raise DataError(f"{item} is not an image file (.jpg, .png, ...)")
    return paths
