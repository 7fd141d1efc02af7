"""Small CNNs from a spec: the seeds' larger_model, shapes for any input, timm's interface, clear errors."""

from __future__ import annotations

import pytest
import torch
from timm.data import resolve_model_data_config

from imagefit.errors import ModelError
from imagefit.models.small_cnn import PRESETS, SmallCNN, canonical_spec, min_input_size, parse_spec


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_larger_model_has_the_parameters_a_hand_count_gives():
    conv1 = 30 * (5 * 5 * 1) + 30  # 28 -> 24, pool -> 12
    conv2 = 15 * (3 * 3 * 30) + 15  # 12 -> 10, pool -> 5
    dense1 = (15 * 5 * 5) * 128 + 128
    dense2 = 128 * 50 + 50
    head = 50 * 10 + 10
    assert (conv1, conv2, dense1, dense2, head) == (780, 4065, 48128, 6450, 510)
    model = SmallCNN("larger_model", in_chans=1, num_classes=10, input_size=28)
    assert n_params(model) == conv1 + conv2 + dense1 + dense2 + head == 59933
    maps = [(30, 24, 24), (30, 12, 12), (15, 10, 10), (15, 5, 5), (15, 5, 5)]
    assert model.layer_shapes == [*maps, (128,), (50,)]


def test_larger_model_outputs_and_the_timm_interface():
    model = SmallCNN("larger_model", in_chans=1, num_classes=10, input_size=28).eval()
    x = torch.randn(4, 1, 28, 28)
    feature_map = model.forward_features(x)
    assert feature_map.shape == (4, 15, 5, 5)
    pre_logits = model.forward_head(feature_map, pre_logits=True)
    assert pre_logits.shape == (4, 50) and model.num_features == 50
    logits = model(x)
    assert logits.shape == (4, 10)
    torch.testing.assert_close(model.get_classifier()(pre_logits), logits)
    # dense layers read the map flattened in (C, H, W) order: the first one is a 5x5 convolution
    dense = model.pre_logits[1]
    as_conv = torch.nn.functional.conv2d(feature_map, dense.weight.view(128, 15, 5, 5), dense.bias)
    torch.testing.assert_close(as_conv.flatten(1), model.pre_logits[:2](feature_map))


def test_reset_classifier_replaces_the_head_only():
    model = SmallCNN("larger_model", in_chans=3, num_classes=10, input_size=32)
    body = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head")}
    model.reset_classifier(3)
    assert model.num_classes == 3 and model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in body.items())
    model.reset_classifier(0)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 50)


@pytest.mark.parametrize(
    ("chans", "size", "flat"), [(1, 28, 15 * 5 * 5), (3, 64, 15 * 14 * 14), (4, (40, 30), 15 * 8 * 5)]
)
def test_any_channel_count_and_input_size(chans, size, flat):
    model = SmallCNN("larger_model", in_chans=chans, num_classes=7, input_size=size)
    h, w = (size, size) if isinstance(size, int) else size
    assert model(torch.randn(2, chans, h, w)).shape == (2, 7)
    assert model.pre_logits[1].in_features == flat
    assert model.features[0].in_channels == chans


def test_data_config_comes_from_the_model_like_any_timm_model():
    model = SmallCNN("larger_model", in_chans=1, num_classes=10, input_size=(28, 32))
    config = resolve_model_data_config(model)
    assert config["input_size"] == (1, 28, 32)
    assert config["mean"] == (0.5,) and config["std"] == (0.5,)
    assert config["crop_pct"] == 1.0 and config["interpolation"] == "bilinear"
    rgb = resolve_model_data_config(SmallCNN("simple_model", in_chans=3, num_classes=2, input_size=40))
    assert rgb["mean"] == (0.5, 0.5, 0.5) and rgb["input_size"] == (3, 40, 40)


def test_spec_tokens_strides_same_padding_batchnorm_and_average_pooling():
    spec = "conv8@3same-bn-avgpool2-conv6@3s2same-drop0.5-dense16-bn-drop0.1"
    assert canonical_spec(spec) == spec
    model = SmallCNN(spec, in_chans=2, num_classes=3, input_size=(17, 10))
    assert model.layer_shapes[:4] == [(8, 17, 10), (8, 17, 10), (8, 8, 5), (6, 4, 3)]
    assert model.num_features == 16
    kinds = [type(m).__name__ for m in model.modules()]
    assert {"BatchNorm2d", "BatchNorm1d", "AvgPool2d", "Dropout"} <= set(kinds)
    assert model.eval()(torch.randn(3, 2, 17, 10)).shape == (3, 3)


def test_presets_and_a_spec_without_dense_layers():
    assert canonical_spec("larger_model") == PRESETS["larger_model"]
    assert [layer.kind for layer in parse_spec("simple_model")] == ["conv", "pool", "drop", "dense"]
    baseline = SmallCNN("baseline_model", in_chans=1, num_classes=10, input_size=28)
    assert n_params(baseline) == 784 * 784 + 784 + 784 * 10 + 10  # the course's MLP
    no_dense = SmallCNN("conv4@3-pool2", in_chans=1, num_classes=2, input_size=10)
    assert no_dense.num_features == 4 * 4 * 4


def test_rebuilt_from_its_description_with_the_same_shapes():
    model = SmallCNN("conv5@3-pool2-dense9", in_chans=3, num_classes=4, input_size=(20, 24))
    copy = SmallCNN.from_description(model.describe(), num_classes=4)
    copy.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 20, 24)
    torch.testing.assert_close(copy.eval()(x), model.eval()(x))


def test_input_too_small_names_the_layer_and_the_size():
    assert min_input_size(parse_spec("larger_model")) == 12
    SmallCNN("larger_model", in_chans=1, num_classes=10, input_size=12)
    with pytest.raises(ModelError) as err:
        SmallCNN("larger_model", in_chans=1, num_classes=10, input_size=11)
    message = str(err.value)
    assert "layer 4 (pool2)" in message and "1x1 pixels" in message and "11x11" in message
    assert "--image-size 12" in message and "\n" not in message


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("", "empty --arch"),
        ("conv30", "cannot read 'conv30'"),
        ("conv8@3-maxout4", "cannot read 'maxout4'"),
        ("dense10-conv3@3", "conv3@3 comes after a dense layer"),
        ("drop1.5", "must be below 1"),
        ("conv0@3", "at least 1"),
        ("pool0", "at least 1"),
    ],
)
def test_invalid_specs_fail_in_one_line(spec, words):
    with pytest.raises(ModelError, match=words) as err:
        parse_spec(spec)
    assert "\n" not in str(err.value)
