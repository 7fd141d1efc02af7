"""The eval preprocessing (resize the shorter side, centre crop, normalise) in PIL and NumPy alone.

It equals timm's `create_transform(is_training=False)` for square centre-crop configs, so that a
prediction through ONNX Runtime needs neither torch nor timm (a fast start for one image).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def supports(data_config: dict) -> bool:
    """Whether `eval_array` reproduces the config's pipeline (square input, centre crop, 3 channels)."""
    channels, h, w = data_config["input_size"]
    mode = data_config.get("crop_mode") or "center"
    return channels == 3 and h == w and mode == "center" and data_config.get("interpolation") in _RESAMPLE


def eval_array(img: Image.Image, data_config: dict) -> np.ndarray:
    """(3, H, W) float32: the shorter side resized to size / crop_pct, centre-cropped, normalised."""
    _, size, _ = data_config["input_size"]
    scale = math.floor(size / (data_config.get("crop_pct") or 1.0))
    width, height = img.size
    short, long = min(width, height), max(width, height)
    if short != scale:
        new_long = int(scale * long / short)
        target = (scale, new_long) if width <= height else (new_long, scale)
        img = img.resize(target, _RESAMPLE[data_config["interpolation"]])
    width, height = img.size
    top, left = round((height - size) / 2.0), round((width - size) / 2.0)  # as torchvision crops
    img = img.crop((left, top, left + size, top + size))
    pixels = np.asarray(img.convert("RGB"), np.float32) / 255.0
    mean = np.asarray(data_config["mean"], np.float32)
    std = np.asarray(data_config["std"], np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def decode_size(data_config: dict) -> int:
    """Shorter side the eval pipeline resizes to; JPEGs may be decoded down to it, not below."""
    size = min(data_config["input_size"][1:])
    crop_pct = data_config.get("crop_pct") or 1.0
    return math.floor(size / crop_pct)
