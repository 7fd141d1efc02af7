"""Preprocessing derived from a backbone's data config (timm's record), never typed by hand."""

from __future__ import annotations

import math

from timm.data import create_transform

from imagefit.data.channels import match_channels


def eval_transform(data_config: dict):
    """The deterministic resize, centre-crop and normalise pipeline, in the model's channel count."""
    transform = create_transform(**data_config, is_training=False)
    return match_channels(transform, data_config["input_size"][0])


def decode_size(data_config: dict) -> int:
    """Shorter side the eval pipeline resizes to; JPEGs may be decoded down to it, not below."""
    size = min(data_config["input_size"][1:])
    crop_pct = data_config.get("crop_pct") or 1.0
    return math.floor(size / crop_pct)
