"""Reading weight files safely, fitting them onto a model, and building backbones from the registry."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from imagefit.errors import ModelError
from imagefit.models.registry import create_backbone, get_spec
from imagefit.models.weights import fit_state_dict, read_state_dict


def _target() -> dict[str, torch.Tensor]:
    return {
        "conv.weight": torch.zeros(4, 3, 3, 3),
        "conv.bias": torch.zeros(4),
        "fc.weight": torch.zeros(2, 4),
        "fc.bias": torch.zeros(2),
    }


def _source(names: list[str], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [t.shape for t in _target().values()]
    return {name: torch.randn(shape, generator=generator) for name, shape in zip(names, shapes, strict=True)}


# --- fit_state_dict ---------------------------------------------------------------------------


def test_same_names_map_by_name_whatever_the_order() -> None:
    source = _source(list(_target()))
    shuffled = {k: source[k] for k in reversed(list(source))}
    fitted = fit_state_dict(shuffled, _target(), "test")
    assert list(fitted) == list(_target())
    for key in _target():
        assert fitted[key] is source[key]


@pytest.mark.parametrize("prefix", ["module.", "model.", "backbone."])
def test_wrapper_prefixes_are_stripped(prefix: str) -> None:
    source = _source(list(_target()))
    wrapped = {prefix + k: v for k, v in reversed(source.items())}
    fitted = fit_state_dict(wrapped, _target(), "test")
    assert set(fitted) == set(_target())
    for key in _target():
        assert fitted[key] is source[key]


def test_other_names_same_shapes_map_in_order() -> None:
    source = _source(["stem.w", "stem.b", "head.w", "head.b"])
    fitted = fit_state_dict(source, _target(), "test")
    assert list(fitted) == list(_target())
    for src, dst in zip(source.values(), fitted.values(), strict=True):
        assert dst is src


def test_shape_mismatch_names_both_tensors() -> None:
    source = _source(["stem.w", "stem.b", "head.w", "head.b"])
    source["head.w"] = torch.zeros(3, 4)
    with pytest.raises(ModelError) as err:
        fit_state_dict(source, _target(), "weights.pth")
    message = str(err.value)
    assert "head.w" in message and "fc.weight" in message
    assert "(3, 4)" in message and "(2, 4)" in message
    assert "weights.pth" in message


def test_shape_mismatch_with_matching_names() -> None:
    source = _source(list(_target()))
    source["fc.bias"] = torch.zeros(7)
    with pytest.raises(ModelError, match=r"fc\.bias.*\(7,\).*\(2,\)"):
        fit_state_dict(source, _target(), "test")


def test_in_order_mapping_catches_a_reordered_file() -> None:
    names = ["stem.w", "stem.b", "head.w", "head.b"]
    source = _source(names)
    reordered = {k: source[k] for k in ["stem.b", "stem.w", "head.w", "head.b"]}
    with pytest.raises(ModelError, match=r"stem\.b.*conv\.weight"):
        fit_state_dict(reordered, _target(), "test")


@pytest.mark.parametrize("count", [3, 5])
def test_count_mismatch(count: int) -> None:
    source = {f"t{i}": torch.zeros(2) for i in range(count)}
    with pytest.raises(ModelError) as err:
        fit_state_dict(source, _target(), "other.safetensors")
    assert f"{count} tensors" in str(err.value)
    assert "4" in str(err.value)
    assert "other.safetensors" in str(err.value)


# --- read_state_dict --------------------------------------------------------------------------


def _assert_same_tensors(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(expected)
    for key, tensor in expected.items():
        assert got[key].dtype == tensor.dtype
        assert torch.equal(got[key], tensor)


def test_read_safetensors_round_trip(tmp_path: Path) -> None:
    state = {**_source(list(_target())), "bn.num_batches_tracked": torch.tensor(5)}
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    _assert_same_tensors(read_state_dict(path), state)


def test_read_pth_round_trip(tmp_path: Path) -> None:
    state = collections.OrderedDict(_source(["a", "b", "c", "d"]))
    path = tmp_path / "w.pth"
    torch.save(state, path)
    got = read_state_dict(path)
    assert list(got) == ["a", "b", "c", "d"]  # order kept: in-order fitting depends on it
    _assert_same_tensors(got, state)


def test_read_checkpoint_with_state_dict_entry(tmp_path: Path) -> None:
    state = _source(list(_target()))
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    _assert_same_tensors(read_state_dict(path), state)


def test_missing_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.safetensors"
    with pytest.raises(ModelError, match="does not exist") as err:
        read_state_dict(path)
    assert str(path) in str(err.value)


def test_pth_that_is_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ModelError, match="no state dict") as err:
        read_state_dict(path)
    assert str(path) in str(err.value)


class _Payload:
    """Stands for arbitrary pickled code: it must never be unpickled."""


def test_pth_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2), "obj": _Payload()}, path)
    with pytest.raises(ModelError) as err:
        read_state_dict(path)
    assert str(path) in str(err.value)


def test_garbage_pth(tmp_path: Path) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(ModelError) as err:
        read_state_dict(path)
    assert str(path) in str(err.value)


# --- registry ---------------------------------------------------------------------------------


def test_unknown_backbone() -> None:
    with pytest.raises(ModelError, match="nope_not_a_model"):
        get_spec("nope_not_a_model")


def test_unknown_backbone_suggests_close_names() -> None:
    with pytest.raises(ModelError, match="resnet50"):
        get_spec("resnet5")


def test_timm_name_and_packaged_name() -> None:
    assert get_spec("test_efficientnet").arch == "test_efficientnet"
    assert get_spec("test_efficientnet").package is None
    assert get_spec("efficientnet_lite0").arch == "tf_efficientnet_lite0"


def test_untrained_backbone_and_its_preprocessing() -> None:
    backbone = create_backbone("test_efficientnet", weights="none")
    assert backbone.weights == "none"
    assert backbone.data_config["input_size"] == (3, 160, 160)
    assert backbone.data_config["mean"] == pytest.approx((0.485, 0.456, 0.406))
    assert backbone.model.num_classes == 1000
    assert not backbone.model.training
    assert backbone.num_features == backbone.model.get_classifier().in_features


def test_new_head_and_image_size() -> None:
    backbone = create_backbone("test_efficientnet", weights="none", num_classes=3, image_size=96)
    assert backbone.model.get_classifier().out_features == 3
    assert backbone.data_config["input_size"] == (3, 96, 96)
    assert backbone.train_data_config["input_size"] == (3, 96, 96)
    with torch.no_grad():
        assert backbone.model(torch.zeros(1, 3, 96, 96)).shape == (1, 3)


def test_weights_file_loads_those_exact_tensors(tmp_path: Path) -> None:
    torch.manual_seed(123)
    donor = timm.create_model("test_efficientnet", pretrained=False)
    state = {k: v.contiguous() for k, v in donor.state_dict().items()}
    path = tmp_path / "donor.safetensors"
    save_file(state, str(path))
    backbone = create_backbone("test_efficientnet", weights=path)
    assert backbone.weights == f"file:{path.resolve()}"
    loaded = backbone.model.state_dict()
    assert set(loaded) == set(state)
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key


def test_weights_file_with_renamed_keys_loads_in_order(tmp_path: Path) -> None:
    torch.manual_seed(7)
    donor = timm.create_model("test_efficientnet", pretrained=False)
    state = donor.state_dict()
    renamed = {f"layer{i:03d}": v.contiguous() for i, v in enumerate(state.values())}
    path = tmp_path / "renamed.pth"
    torch.save(renamed, path)
    loaded = create_backbone("test_efficientnet", weights=str(path)).model.state_dict()
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key


def test_weights_of_another_architecture(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"a": torch.zeros(3), "b": torch.zeros(2)}, str(path))
    with pytest.raises(ModelError, match="names must match"):
        create_backbone("test_efficientnet", weights=path)


def test_safetensors_with_foreign_names_is_refused_not_matched_in_order(tmp_path) -> None:
    target = {"a.weight": torch.zeros(2, 3), "b.weight": torch.zeros(3)}
    path = tmp_path / "w.safetensors"
    save_file({"x": torch.ones(2, 3), "y": torch.ones(3)}, str(path))
    with pytest.raises(ModelError, match="names must match"):
        fit_state_dict(read_state_dict(path), target, str(path), ordered=False)
