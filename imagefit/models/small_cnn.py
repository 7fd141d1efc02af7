"""Small CNNs from a compact spec, like the Keras course's `larger_model`, with timm's model interface.

A spec is a dash-separated list of layers, for example the seeds' `larger_model`:

    conv30@5-pool2-conv15@3-pool2-drop0.2-dense128-dense50

- `convN@K`: N filters of KxK, ReLU, 'valid' padding (Keras' default); `sS` sets the stride and
  `same` keeps the size, e.g. `conv32@3same`, `conv32@3s2same`;
- `poolN` / `avgpoolN`: max / average pooling over NxN windows with stride N;
- `bn`: batch normalisation; `dropP`: dropout with probability P;
- `denseN`: a fully connected layer of N units with ReLU; the feature map is flattened before the
  first one.

The classifier (`head`) is added after the last layer; the model returns logits (the seeds' softmax
is applied by the loss and by prediction). Dense layers are plain `nn.Linear` after `nn.Flatten`,
reading the map in (C, H, W) order, so each one is equivalent to a convolution with the map's size
as kernel: that is how a later step can run the network densely over a large image.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from timm.layers import create_conv2d
from torch import nn

from imagefit.errors import ModelError

PRESETS = {
    "larger_model": "conv30@5-pool2-conv15@3-pool2-drop0.2-dense128-dense50",
    "simple_model": "conv32@5-pool2-drop0.2-dense128",
    "baseline_model": "dense784",
}
GRAMMAR = "convN@K[sS][same], poolN, avgpoolN, bn, dropP, denseN"

_CONV = re.compile(r"^conv(\d+)@(\d+)(?:s(\d+))?(same)?$")
_POOL = re.compile(r"^(avgpool|pool)(\d+)$")
_DROP = re.compile(r"^drop(\d*\.?\d+)$")
_DENSE = re.compile(r"^dense(\d+)$")


@dataclass(frozen=True)
class Layer:
    """One token of a spec."""

    kind: str  # conv, pool, avgpool, bn, drop, dense
    size: int = 0  # filters, pool window or units
    kernel: int = 0
    stride: int = 1
    same: bool = False
    p: float = 0.0

    def __str__(self) -> str:
        if self.kind == "conv":
            stride = f"s{self.stride}" if self.stride != 1 else ""
            return f"conv{self.size}@{self.kernel}{stride}{'same' if self.same else ''}"
        if self.kind in ("pool", "avgpool", "dense"):
            return f"{self.kind}{self.size}"
        return f"drop{self.p:g}" if self.kind == "drop" else self.kind


def parse_spec(spec: str) -> tuple[Layer, ...]:
    """The layers of a spec string or preset name; an invalid spec raises ModelError in one line."""
    text = PRESETS.get(spec.strip(), spec).strip().lower()
    if not text:
        raise ModelError(f"empty --arch: give a preset ({', '.join(PRESETS)}) or layers like {GRAMMAR}")
    layers = tuple(_parse_token(token.strip(), spec) for token in text.split("-"))
    dense_at = next((i for i, layer in enumerate(layers) if layer.kind == "dense"), len(layers))
    late = [str(layer) for layer in layers[dense_at:] if layer.kind in ("conv", "pool", "avgpool")]
    if late:
        raise ModelError(f"invalid --arch {spec!r}: {late[0]} comes after a dense layer; put it before")
    return layers


def canonical_spec(spec: str) -> str:
    """The spec written out in full and normalised, e.g. for `larger_model`."""
    return "-".join(str(layer) for layer in parse_spec(spec))


def _parse_token(token: str, spec: str) -> Layer:
    if m := _CONV.match(token):
        layer = Layer("conv", int(m[1]), int(m[2]), int(m[3] or 1), bool(m[4]))
    elif m := _POOL.match(token):
        layer = Layer(m[1], int(m[2]))
    elif m := _DROP.match(token):
        layer = Layer("drop", p=float(m[1]))
        if not layer.p < 1:
            raise ModelError(f"invalid --arch {spec!r}: dropout {token!r} must be below 1 (e.g. drop0.2)")
    elif m := _DENSE.match(token):
        layer = Layer("dense", int(m[1]))
    elif token == "bn":
        layer = Layer("bn")
    else:
        raise ModelError(
            f"invalid --arch {spec!r}: cannot read {token!r}; layers are {GRAMMAR} "
            f"(e.g. {PRESETS['larger_model']}) or a preset ({', '.join(PRESETS)})"
        )
    if layer.kind not in ("bn", "drop") and min(layer.size, layer.stride, layer.kernel or 1) < 1:
        raise ModelError(f"invalid --arch {spec!r}: {token!r} needs sizes of at least 1")
    return layer


def trace_shapes(
    layers: tuple[Layer, ...], in_chans: int, size: tuple[int, int], arch: str = ""
) -> list[tuple[int, ...]]:
    """Output shape of every layer for one input size; a layer that gets too few pixels raises."""
    shapes, misfit = _walk(layers, in_chans, size)
    if misfit is not None:
        i, h, w, need = misfit
        raise ModelError(
            f"--arch {arch or 'spec'} cannot take {size[0]}x{size[1]} images: layer {i + 1} ({layers[i]}) "
            f"gets {h}x{w} pixels but needs at least {need}x{need}; "
            f"use --image-size {min_input_size(layers)} or more"
        )
    return shapes


def min_input_size(layers: tuple[Layer, ...]) -> int:
    """The smallest square side the layers accept."""
    side = 1
    while _walk(layers, 1, (side, side))[1] is not None:
        side += 1
    return side


def _walk(
    layers: tuple[Layer, ...], in_chans: int, size: tuple[int, int]
) -> tuple[list[tuple[int, ...]], tuple[int, int, int, int] | None]:
    """Shapes layer by layer, and (layer, height, width, pixels needed) where one does not fit."""
    c, h, w = in_chans, *size
    shapes: list[tuple[int, ...]] = []
    flat = None
    for i, layer in enumerate(layers):
        need = _pixels_needed(layer)
        if min(h, w) < need:
            return shapes, (i, h, w, need)
        if layer.kind == "conv":
            c = layer.size
            if layer.same:
                h, w = math.ceil(h / layer.stride), math.ceil(w / layer.stride)
            else:
                h, w = (h - layer.kernel) // layer.stride + 1, (w - layer.kernel) // layer.stride + 1
        elif layer.kind in ("pool", "avgpool"):
            h, w = h // layer.size, w // layer.size
        elif layer.kind == "dense":
            flat = layer.size
        shapes.append((c, h, w) if flat is None else (flat,))
    return shapes, None


def _pixels_needed(layer: Layer) -> int:
    if layer.kind == "conv":
        return 1 if layer.same else layer.kernel
    return layer.size if layer.kind in ("pool", "avgpool") else 0


class SmallCNN(nn.Module):
    """A small sequential CNN built from a spec, with the timm model interface.

    `num_features` is the width of the pre-logits vector the classifier reads (the last dense
    layer, or the flattened map when there is none), as imagefit's feature extraction expects.
    """

    def __init__(
        self,
        spec: str = "larger_model",
        in_chans: int = 3,
        num_classes: int = 1000,
        input_size: int | tuple[int, int] = 28,
    ):
        super().__init__()
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if in_chans < 1:
            raise ModelError(f"a model needs at least one input channel, got {in_chans}")
        layers = parse_spec(spec)
        shapes = trace_shapes(layers, in_chans, size, spec)
        self.arch = spec if spec in PRESETS else "small_cnn"
        self.spec = canonical_spec(spec)
        self.in_chans, self.input_size = in_chans, size
        self.layer_shapes = shapes
        n_conv = next((i for i, layer in enumerate(layers) if layer.kind == "dense"), len(layers))
        conv_in = [(in_chans, *size), *shapes[: n_conv - 1]][:n_conv]
        parts = [_conv_part(layer, s[0]) for layer, s in zip(layers[:n_conv], conv_in, strict=True)]
        self.features = nn.Sequential(*[m for part in parts for m in part])
        map_shape = shapes[n_conv - 1] if n_conv else (in_chans, *size)
        width = math.prod(map_shape)
        dense: list[nn.Module] = [nn.Flatten()]
        for layer in layers[n_conv:]:
            dense.extend(_dense_part(layer, width))
            width = layer.size if layer.kind == "dense" else width
        self.pre_logits = nn.Sequential(*dense)
        self.num_features = self.head_hidden_size = width
        self.num_classes = num_classes
        self.head = self._new_head(num_classes)
        self.pretrained_cfg = self.default_cfg = {
            "architecture": self.arch,
            "input_size": (in_chans, *size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "crop_pct": 1.0,
            "crop_mode": "center",
            "interpolation": "bilinear",
            "num_classes": num_classes,
            "first_conv": "features.0" if n_conv else "",
            "classifier": "head",
        }
        self.apply(_keras_init)

    def describe(self) -> dict:
        """What rebuilds this architecture: spec, channels, input size (for a run's config)."""
        return {"spec": self.spec, "in_chans": self.in_chans, "input_size": list(self.input_size)}

    @classmethod
    def from_description(cls, description: dict, num_classes: int) -> SmallCNN:
        """The model `describe()` described, untrained, with `num_classes` outputs."""
        size = tuple(description["input_size"])
        return cls(description["spec"], description["in_chans"], num_classes, size)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new, untrained head with `num_classes` outputs (0: none, the model returns pre-logits)."""
        self.num_classes = num_classes
        self.pretrained_cfg["num_classes"] = num_classes
        self.head = self._new_head(num_classes)

    def _new_head(self, num_classes: int) -> nn.Module:
        head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        head.apply(_keras_init)
        return head


def _conv_part(layer: Layer, channels: int) -> list[nn.Module]:
    if layer.kind == "conv":
        padding = "same" if layer.same else "valid"
        conv = create_conv2d(
            channels, layer.size, layer.kernel, stride=layer.stride, padding=padding, bias=True
        )
        return [conv, nn.ReLU()]
    if layer.kind == "pool":
        return [nn.MaxPool2d(layer.size)]
    if layer.kind == "avgpool":
        return [nn.AvgPool2d(layer.size)]
    if layer.kind == "bn":
        return [nn.BatchNorm2d(channels)]
    return [nn.Dropout(layer.p)]


def _dense_part(layer: Layer, width: int) -> list[nn.Module]:
    if layer.kind == "dense":
        return [nn.Linear(width, layer.size), nn.ReLU()]
    if layer.kind == "bn":
        return [nn.BatchNorm1d(width)]
    return [nn.Dropout(layer.p)]


def _keras_init(module: nn.Module) -> None:
    """Keras' defaults (Glorot-uniform weights, zero biases), as the seeds' models started."""
    if isinstance(module, nn.Conv2d | nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
