"""Channel counts: whether a dataset is grayscale, and transforms that give a model its channels.

Image files are decoded as RGB (`open_image`); a one-channel model (the seeds' MNIST-style CNNs)
gets its input through torchvision's Grayscale, placed before timm's resize and normalise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image
from torchvision import transforms

from imagefit.errors import ModelError

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def detect_channels(paths: Sequence[Path], sample: int = 32) -> int:
    """1 when every sampled image is stored as grayscale, else 3; reads headers only."""
    modes = set()
    for path in list(paths)[:sample]:
        try:
            with Image.open(path) as img:
                modes.add(img.mode)
        except (OSError, ValueError):
            continue  # an unreadable file is reported when it is decoded
    return 1 if modes and modes <= GRAY_MODES else 3


def match_channels(transform: Callable, channels: int) -> Callable:
    """`transform` preceded by a conversion of the RGB picture to `channels` (1 or 3) channels."""
    if channels == 3:
        return transform
    if channels == 1:
        return transforms.Compose([transforms.Grayscale(num_output_channels=1), transform])
    raise ModelError(f"image files give 1 or 3 channels, but the model takes {channels}")
