"""A Keras-style summary: every layer with its output shape and parameters, and the totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn


@dataclass
class LayerRow:
    """One leaf layer as it ran on a dummy image."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    trainable: int
    detail: str = ""  # kernel/stride/padding/dilation for convolutions and pools


@dataclass
class ModelSummary:
    """Rows in execution order plus parameter totals over the whole model."""

    rows: list[LayerRow] = field(default_factory=list)
    total: int = 0
    trainable: int = 0
    input_shape: tuple[int, ...] = ()

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    def table(self) -> str:
        """The summary as fixed-width text, one line per layer."""
        width = max([len(r.name) + len(r.kind) + 3 for r in self.rows] + [24])
        lines = [
            f"{'Layer (type)':<{width}}  {'Output shape':<20} {'Param #':>10}  Details",
            "=" * (width + 50),
        ]
        for r in self.rows:
            shape = "(" + ", ".join(str(d) for d in r.output_shape) + ")"
            lines.append(f"{r.name + ' (' + r.kind + ')':<{width}}  {shape:<20} {r.params:>10,}  {r.detail}")
        lines += [
            "=" * (width + 50),
            f"Input shape: {self.input_shape}",
            f"Total params: {self.total:,}",
            f"Trainable params: {self.trainable:,}",
            f"Non-trainable params: {self.frozen:,}",
        ]
        return "\n".join(lines)


def summarize(model: nn.Module, input_size: tuple[int, int, int]) -> ModelSummary:
    """Run one zero image of `input_size` (C, H, W) through `model` and record every leaf layer."""
    rows: list[LayerRow] = []
    handles = []
    for name, module in model.named_modules():
        leaf = not any(True for _ in module.children())
        own_params = any(True for _ in module.parameters(recurse=False))
        if name and (own_params or leaf) and not isinstance(module, nn.Identity):
            handles.append(module.register_forward_pre_hook(_placeholder(name, module, rows)))
            handles.append(module.register_forward_hook(_recorder(rows)))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ModelSummary(rows, total, trainable, (None, *input_size))


def _placeholder(name: str, module: nn.Module, rows: list[LayerRow]):
    """Reserve the layer's row when it starts, so a layer precedes the sub-layers it calls."""

    def hook(mod: nn.Module, inputs) -> None:
        params = sum(p.numel() for p in module.parameters(recurse=False))
        trainable = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
        row = LayerRow(name, type(module).__name__, (), params, trainable, _detail(module))
        mod._imagefit_row = row
        rows.append(row)

    return hook


def _recorder(rows: list[LayerRow]):
    def hook(module: nn.Module, inputs, output) -> None:
        out = output[0] if isinstance(output, tuple | list) else output
        shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()
        module._imagefit_row.output_shape = (None, *shape)
        del module._imagefit_row

    return hook


def _detail(module: nn.Module) -> str:
    if isinstance(module, nn.modules.conv._ConvNd):
        padding = (
            "same (TF-style, computed per input)"
            if type(module).__name__.endswith("Same")
            else module.padding
        )
        return (
            f"kernel {tuple(module.kernel_size)}, stride {tuple(module.stride)}, "
            f"padding {padding}, dilation {tuple(module.dilation)}"
            + (f", groups {module.groups}" if module.groups > 1 else "")
        )
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        return f"kernel {module.kernel_size}, stride {module.stride}, padding {module.padding}"
    return ""


def summary(
    source: str, image_size: int | None = None, channels: int | None = None, classes: int = 10
) -> ModelSummary:
    """The summary of a run folder, a timm or registry name, or a small-CNN preset or spec."""
    from imagefit.models.small_cnn import PRESETS, SmallCNN
    from imagefit.runs import open_model

    if source in PRESETS or ("@" in source and not Path(source).exists()):
        size, channels = image_size or 28, channels or 1
        return summarize(SmallCNN(source, channels, classes, size), (channels, size, size))
    model, data_config, _ = open_model(source, "none")
    c, h, w = data_config["input_size"]
    return summarize(model, (c, image_size or h, image_size or w))
