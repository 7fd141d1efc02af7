"""Backbones train on crops of tiles through the dense function that maps: targets, loss, counting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagefit.errors import DataError, OptionError
from imagefit.maps.inputs.tileset import TileSet
from imagefit.maps.training.crops import IGNORED, CropSource, PositionLoss, colour_jitter, position_targets
from imagefit.maps.training.options import MapTrainOptions
from imagefit.train.engine.trainer import count_correct, count_targets
from tests._tiles import COLOURS, make_tiles

VALUES = sorted(COLOURS)  # class index k has value VALUES[k]


def _class_of_pixels(x: np.ndarray) -> np.ndarray:
    """The class whose key colour is nearest each pixel (the generated tiles' noise is small)."""
    colours = np.array([COLOURS[v] for v in VALUES], np.float32)
    d = ((x[..., None, :].astype(np.float32) - colours) ** 2).sum(-1)
    return d.argmin(-1)


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return TileSet(make_tiles(tmp_path_factory.mktemp("crops"), refs=("A1", "A2"), size=(70, 90)))


@pytest.mark.parametrize("augment", [False, True])
def test_each_position_is_labelled_with_its_patch_centre_pixel_also_after_turning(tiles, augment):
    source = CropSource(tiles, ["A1", "A2"], crop=40, patch=12)
    x, y = source.sample(24, np.random.default_rng(3), balance=False, augment=augment)
    assert x.shape == (24, 40, 40, 3) and y.shape == (24, 29, 29)
    centres = _class_of_pixels(x[:, 6 : 6 + 29, 6 : 6 + 29])
    assert (centres == y).mean() > 0.97  # the labels travel with the pixels (a few noisy pixels)
    shifted = _class_of_pixels(x[:, 5 : 5 + 29, 5 : 5 + 29])
    assert (shifted == y).mean() < (centres == y).mean()


def test_balanced_crops_are_centred_on_every_class_alike(tiles):
    source = CropSource(tiles, ["A1", "A2"], crop=21, patch=1)
    _, y = source.sample(600, np.random.default_rng(0), balance=True)
    centre = y[:, 10, 10]
    counts = np.bincount(centre, minlength=3)
    assert counts.min() > 150  # each class about a third, though Land covers most of the area
    _, y = source.sample(600, np.random.default_rng(0), balance=False)
    assert np.bincount(y[:, 10, 10], minlength=3)[0] < 150


def test_jitter_changes_light_and_colour_of_crops_but_not_their_labels(tiles):
    source = CropSource(tiles, ["A1", "A2"], crop=40, patch=1)
    plain = [source.sample(1, np.random.default_rng(seed), augment=True) for seed in range(16)]
    jittered = [source.sample(1, np.random.default_rng(seed), augment=True, jitter=0.3) for seed in range(16)]
    assert all(np.array_equal(p[1], j[1]) for p, j in zip(plain, jittered, strict=True))  # same place
    # each crop its own factors: brightness ratios differ between crops
    ratios = np.array([j[0].mean() / p[0].mean() for p, j in zip(plain, jittered, strict=True)])
    assert ratios.std() > 0.02 and np.all(np.abs(ratios - 1) < 0.45)


def test_colour_jitter_scales_brightness_contrast_and_saturation_within_its_range():
    rng = np.random.default_rng(0)
    crop = rng.integers(40, 200, (32, 32, 3)).astype(np.uint8)
    grey = np.repeat(crop[..., :1], 3, axis=2)
    out = colour_jitter(grey, 0.4, np.random.default_rng(1))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    b, c, _ = np.random.default_rng(1).uniform(0.6, 1.4, 3)
    x = grey.astype(np.float32) * b
    expected = np.clip((x - x.mean()) * c + x.mean() + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(out.astype(int) - expected).max() <= 1
    four = np.concatenate([crop, crop[..., :1]], axis=2)
    assert colour_jitter(four, 0.2, np.random.default_rng(2)).shape == (32, 32, 4)
    with pytest.raises(OptionError, match="--jitter"):
        MapTrainOptions(model="unet", jitter=1.5)
    with pytest.raises(OptionError, match="not small CNNs"):
        MapTrainOptions(model="larger_model", jitter=0.2)


def test_position_targets_take_the_centre_of_each_patch():
    labels = np.arange(36).reshape(6, 6)
    assert np.array_equal(position_targets(labels, 3), labels[1:5, 1:5])
    assert np.array_equal(position_targets(labels, 4), labels[2:5, 2:5])


def test_a_tile_smaller_than_the_crop_is_named(tiles):
    with pytest.raises(DataError, match=r"tile A1 \(90x70 pixels\) is smaller than crop 80"):
        CropSource(tiles, ["A1"], crop=80, patch=12)


def test_the_position_loss_averages_labelled_positions_only_and_is_zero_without_any():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    targets = torch.randint(0, 3, (2, 4, 5))
    targets[0, :2] = IGNORED
    keep = targets >= 0
    expected = torch.nn.functional.cross_entropy(logits.permute(0, 2, 3, 1)[keep], targets[keep])
    assert torch.allclose(PositionLoss()(logits, targets), expected)
    none = torch.full((2, 4, 5), IGNORED)
    assert PositionLoss()(logits, none).item() == 0.0
    weight = torch.tensor([0.5, 2.0, 1.0])
    weighted = torch.nn.functional.cross_entropy(logits, targets, weight, ignore_index=IGNORED)
    assert torch.allclose(PositionLoss(weight)(logits, targets), weighted)  # PyTorch's weighted mean
    assert PositionLoss(weight)(logits, none).item() == 0.0
    assert count_targets(targets) == int(keep.sum()) and count_targets(none) == 0
    right = logits.argmax(1) == targets
    assert count_correct(logits, targets) == int((right & keep).sum())


def test_counting_keeps_its_meaning_for_labels_and_soft_targets():
    out = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert count_targets(torch.tensor([0, 1, 1])) == 3 and count_correct(out, torch.tensor([0, 1, 1])) == 2
    soft = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    assert count_targets(soft) == 3 and count_correct(out, soft) == 2


def test_training_the_dense_backbone_trains_the_models_own_classifier():
    import timm

    from imagefit.maps.mapping.dense_networks import DenseBackbone

    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", num_classes=3)
    net = DenseBackbone(model, 32).train()
    assert set(net.state_dict()) == {f"model.{k}" for k in model.state_dict()}
    out = net(torch.randn(2, 3, 96, 96))
    assert out.shape == (2, 3, 65, 65)
    PositionLoss()(out, torch.randint(0, 3, (2, 65, 65))).backward()
    assert model.get_classifier().weight.grad is not None
    assert model.get_classifier().weight.grad.abs().sum() > 0
