"""Training augmentation: the --aug spec, its checks, and what each setting does to a picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imagefit.data.augment import Augment, parse_augment, train_transform
from imagefit.data.transforms import eval_transform
from imagefit.errors import OptionError

CONFIG = {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3, "crop_pct": 1.0}
STILL = "hflip=0,jitter=0,scale=1-1"  # every random step off, so one setting can be looked at alone


def picture(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))


def test_a_spec_sets_the_named_fields_and_reads_back_from_its_description() -> None:
    aug = parse_augment("rotate=15, shear=10,vflip=0.5,blur=0.2,scale=0.6-1")
    assert (aug.rotate, aug.shear, aug.vflip, aug.blur, aug.scale) == (15, 10, 0.5, 0.2, (0.6, 1.0))
    assert aug.hflip == Augment().hflip and aug.jitter == Augment().jitter  # the rest keep defaults
    assert parse_augment(aug.describe()) == aug
    assert parse_augment(True) == Augment() and parse_augment("on") == Augment()
    assert parse_augment(False) is None and parse_augment("off") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("twist=3", "bad augmentation"),
        ("rotate", "bad augmentation"),
        ("rotate=abc", "expected a number"),
        ("vflip=2", "probability"),
        ("scale=0.9-0.5", "scale"),
        ("shear=-4", "must not be negative"),
    ],
)
def test_bad_specs_are_option_errors(spec: str, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        parse_augment(spec)


def test_a_certain_vertical_flip_is_the_flipped_picture() -> None:
    img = picture()
    out = train_transform(CONFIG, f"{STILL},vflip=1")(img)
    expected = eval_transform(CONFIG)(img.transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    assert torch.allclose(out, expected, atol=1e-6)


def test_with_everything_off_the_training_picture_is_the_eval_picture() -> None:
    img = picture(1)
    assert torch.allclose(train_transform(CONFIG, STILL)(img), eval_transform(CONFIG)(img), atol=1e-6)


@pytest.mark.parametrize("setting", ["rotate=30", "shear=20", "blur=1", "jitter=0.5"])
def test_each_setting_changes_the_picture_and_is_repeatable_under_a_seed(setting: str) -> None:
    img, transform = picture(2), train_transform(CONFIG, f"{STILL},{setting}")
    torch.manual_seed(5)
    first = transform(img)
    torch.manual_seed(5)
    again = transform(img)
    assert torch.equal(first, again)
    assert (first - eval_transform(CONFIG)(img)).abs().mean() > 0.01


def test_one_channel_models_get_one_channel() -> None:
    config = {**CONFIG, "input_size": (1, 32, 32), "mean": (0.5,), "std": (0.5,)}
    assert train_transform(config, "rotate=10,blur=0.5")(picture()).shape == (1, 32, 32)
