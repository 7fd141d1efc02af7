"""Segmentation decoders (segmentation_models_pytorch) on a timm encoder with offline ImageNet weights.

smp builds the encoder as a timm feature extractor (`tu-<timm name>`); it is always built with
`encoder_weights=None` (smp would download them) and the encoder's tensors are then taken, by name,
from the registry backbone's offline weights (for efficientnet_lite0 the bundled package).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from imagefit.errors import ModelError
from imagefit.models.bands import PRETRAINED_CHANNELS, band_data_config

DECODERS = {"unet": "Unet", "fpn": "FPN", "deeplabv3plus": "DeepLabV3Plus"}
DEFAULT_ENCODER = "efficientnet_lite0"  # a registry name: its weights come from the bundled package
ENCODER_ARCH = {"efficientnet_lite0": "efficientnet_lite0"}  # registry name -> smp's tu- timm name
# lighter than smp's (256, 128, 64, 32, 16): the full-resolution stages dominate CPU time
DECODER_OPTIONS = {"unet": {"decoder_channels": [128, 64, 48, 32, 16]}, "fpn": {}, "deeplabv3plus": {}}


def is_decoder(name: str) -> bool:
    """Whether `name` is a segmentation decoder (unet, fpn, deeplabv3plus)."""
    return name.lower() in DECODERS


def decoder_record(name: str, encoder: str = DEFAULT_ENCODER) -> dict:
    """The model record (run config) of decoder `name` on registry backbone `encoder`."""
    name = name.lower()
    if name not in DECODERS:
        raise ModelError(f"unknown decoder {name!r}: choose one of {', '.join(DECODERS)}")
    arch = ENCODER_ARCH.get(encoder, encoder)
    return {"kind": "smp", "arch": DECODERS[name], "encoder": f"tu-{arch}", **DECODER_OPTIONS[name]}


def build_decoder(record: dict, num_classes: int, in_channels: int = 3) -> nn.Module:
    """An untrained decoder model from its record; nothing is downloaded."""
    import segmentation_models_pytorch as smp

    in_channels = int(record.get("in_chans", in_channels))
    options = {k: v for k, v in record.items() if k not in ("kind", "arch", "encoder", "in_chans")}
    if "decoder_channels" in options:
        options["decoder_channels"] = tuple(options["decoder_channels"])
    try:
        model = getattr(smp, record["arch"])(
            encoder_name=record["encoder"], encoder_weights=None, in_channels=in_channels,
            classes=num_classes, **options,
        )  # fmt: skip
    except (AttributeError, KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"cannot build decoder {record.get('arch')} on {record.get('encoder')}: {exc}"
        ) from exc
    model.segmentation_record = dict(record)  # what build_model needs to make it again
    model.num_classes = num_classes  # as timm models and small CNNs tell it
    return model


def create_decoder(
    name: str, num_classes: int, encoder: str = DEFAULT_ENCODER, weights: str | Path = "auto",
    in_chans: int = PRETRAINED_CHANNELS,
) -> tuple[nn.Module, str, dict]:  # fmt: skip
    """Decoder `name` with `encoder`'s offline weights (its first convolution adapted to `in_chans`
    bands): (model, weights description, data config)."""
    from imagefit.models.registry import create_backbone

    record = decoder_record(name, encoder)
    if in_chans != PRETRAINED_CHANNELS:
        record["in_chans"] = in_chans
    model = build_decoder(record, num_classes)
    backbone = create_backbone(encoder, weights)
    if backbone.weights != "none":
        load_encoder_weights(model, backbone.model, encoder)
    return model, backbone.weights, band_data_config(dict(backbone.data_config), in_chans)


def load_encoder_weights(model: nn.Module, source_model: nn.Module, origin: str) -> None:
    """Copy a timm classifier's tensors by name into the decoder's encoder (every one must fit)."""
    from timm.models import adapt_input_conv

    source = source_model.state_dict()
    target = model.encoder.model.state_dict()
    for k, tensor in target.items():  # the first convolution of an encoder of other than 3 bands
        theirs = source.get(k)
        if theirs is not None and theirs.ndim == 4 and _other_bands(theirs.shape, tensor.shape):
            source[k] = adapt_input_conv(tensor.shape[1], theirs)
    missing = [k for k in target if k not in source or source[k].shape != target[k].shape]
    if missing:
        raise ModelError(
            f"the {origin} weights do not fit the decoder's encoder (e.g. {', '.join(missing[:3])})"
        )
    model.encoder.model.load_state_dict({k: source[k] for k in target})


def _other_bands(pretrained: torch.Size, target: torch.Size) -> bool:
    """Whether a convolution's weight differs from the RGB-pretrained one only in its input bands."""
    return (
        pretrained[1] == PRETRAINED_CHANNELS
        and target[1] != PRETRAINED_CHANNELS
        and pretrained[0] == target[0]
        and pretrained[2:] == target[2:]
    )
