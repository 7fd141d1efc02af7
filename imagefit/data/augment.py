"""Training transforms derived from a model's data config by timm, for 1- or 3-channel models."""

from __future__ import annotations

from collections.abc import Callable

from timm.data import create_transform

from imagefit.data.channels import match_channels
from imagefit.data.transforms import eval_transform

# Mild by default: a small CNN trained from scratch on few images needs the object kept whole.
_TRAIN_SCALE = (0.75, 1.0)
_COLOUR_JITTER = 0.2


def train_transform(data_config: dict, augment: bool = False) -> Callable:
    """Random crops of 75-100 % of the image, flips and (for colour) jitter; without `augment`, eval's."""
    if not augment:
        return eval_transform(data_config)
    channels = data_config["input_size"][0]
    transform = create_transform(
        input_size=data_config["input_size"],
        is_training=True,
        scale=_TRAIN_SCALE,
        hflip=0.5,
        color_jitter=_COLOUR_JITTER if channels == 3 else None,
        interpolation=data_config.get("interpolation", "bilinear"),
        mean=data_config["mean"],
        std=data_config["std"],
    )
    return match_channels(transform, channels)
