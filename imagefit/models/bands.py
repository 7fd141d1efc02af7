"""Images of any number of bands on RGB-pretrained backbones: the first convolution and normalisation.

As timm does when it loads pretrained weights for another `in_chans`: the RGB kernels of the first
convolution are repeated over the bands and scaled by 3 / bands (one band: their sum), so that a
pretrained network sees about the activations it was trained with; each band is normalised with
the mean and std of the RGB channel whose kernel it took (one band: their average).
"""

from __future__ import annotations

import torch
from torch import nn

PRETRAINED_CHANNELS = 3


def first_conv_weight(model: nn.Module) -> str | None:
    """The state-dict key of a timm model's first convolution's weight (None if not recorded)."""
    first = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv")
    if isinstance(first, list | tuple):
        first = first[0]
    return f"{first}.weight" if first else None


def input_channels(model: nn.Module) -> int:
    """The number of input channels (bands) of a timm model, from its first convolution."""
    key = first_conv_weight(model)
    weight = dict(model.named_parameters()).get(key) if key else None
    if weight is None or weight.ndim != 4:
        return int(getattr(model, "in_chans", PRETRAINED_CHANNELS))
    return int(weight.shape[1])


def pretrained_target(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as RGB-pretrained weights fit it: its first convolution with 3 inputs."""
    target = model.state_dict()
    key, chans = first_conv_weight(model), input_channels(model)
    if key in target and chans != PRETRAINED_CHANNELS:
        out, _, kh, kw = target[key].shape
        target = {**target, key: torch.empty(out, PRETRAINED_CHANNELS, kh, kw, device="meta")}
    return target


def adapt_first_conv(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """RGB-pretrained weights fitted to `model`'s keys, their first convolution adapted to its bands."""
    from timm.models import adapt_input_conv

    key, chans = first_conv_weight(model), input_channels(model)
    if key not in state or chans == PRETRAINED_CHANNELS:
        return state
    return {**state, key: adapt_input_conv(chans, state[key])}


def band_data_config(data_config: dict, bands: int) -> dict:
    """An RGB preprocessing config for `bands` bands: each band the mean/std of the channel it stands for."""
    if bands == len(data_config["mean"]):
        return data_config
    mean, std = tuple(data_config["mean"]), tuple(data_config["std"])
    if bands == 1:
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    else:
        mean = tuple(mean[i % len(mean)] for i in range(bands))
        std = tuple(std[i % len(std)] for i in range(bands))
    return {**data_config, "mean": mean, "std": std, "input_size": (bands, *data_config["input_size"][1:])}
