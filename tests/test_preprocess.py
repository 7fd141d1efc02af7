"""The NumPy eval preprocessing equals timm's, for the configs imagefit's backbones use."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagefit.data.preprocess import eval_array, supports
from imagefit.data.transforms import eval_transform

FEATURES = {"input_size": (3, 288, 288), "interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3,
            "crop_pct": 1.0, "crop_mode": "center"}  # fmt: skip
HEAD = {**FEATURES, "input_size": (3, 224, 224), "crop_pct": 0.875}
IMAGENET = {**HEAD, "interpolation": "bilinear", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


@pytest.mark.parametrize("config", [FEATURES, HEAD, IMAGENET])
@pytest.mark.parametrize("size", [(447, 374), (100, 300), (288, 288), (1023, 59), (256, 256)])
def test_numpy_preprocessing_equals_timms(config, size) -> None:
    rng = np.random.default_rng(sum(size))
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    want = eval_transform(config)(img).numpy()
    got = eval_array(img, config)
    assert got.shape == want.shape == (3, *config["input_size"][1:])
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_only_square_centre_crops_of_three_channels_are_supported() -> None:
    assert supports(FEATURES) and supports(HEAD)
    assert not supports({**FEATURES, "input_size": (1, 28, 28)})
    assert not supports({**FEATURES, "input_size": (3, 224, 288)})
    assert not supports({**FEATURES, "crop_mode": "squash"})
