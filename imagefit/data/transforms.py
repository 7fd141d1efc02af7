"""Preprocessing derived from a backbone's data config (timm's record), never typed by hand."""

from __future__ import annotations

from timm.data import create_transform

from imagefit.data.channels import match_channels
from imagefit.data.preprocess import decode_size as decode_size


def eval_transform(data_config: dict):
    """The deterministic resize, centre-crop and normalise pipeline, in the model's channel count."""
    transform = create_transform(**data_config, is_training=False)
    return match_channels(transform, data_config["input_size"][0])
