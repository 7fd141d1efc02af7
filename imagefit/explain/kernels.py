"""Pictures of what a network computes: its first-layer filters, and a layer's feature maps."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imagefit.data.images import open_image
from imagefit.data.transforms import eval_transform
from imagefit.errors import ModelError, OptionError
from imagefit.figures import printable, pyplot, save_figure


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first 2-D convolution the model applies to its input (by definition order)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ModelError(f"{type(model).__name__} has no 2-D convolution to show")


def kernel_grid(conv: nn.Conv2d) -> np.ndarray:
    """Filters as images (n, kh, kw, 3 or 1), each scaled to [0, 1] on its own range."""
    w = conv.weight.detach().float().cpu().numpy()
    w = w[:, :3] if w.shape[1] >= 3 else w[:, :1]
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    return np.transpose((w - lo) / np.maximum(hi - lo, 1e-12), (0, 2, 3, 1))


@torch.no_grad()
def feature_maps(model: nn.Module, data_config: dict, image: str | os.PathLike, layer: str) -> np.ndarray:
    """The output of `layer` for one image, (channels, h, w)."""
    modules = dict(model.named_modules())
    if layer not in modules:
        raise OptionError(f"no layer {layer!r} in the model: imagefit summary lists the names")
    captured = []
    handle = modules[layer].register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        model.eval()(eval_transform(data_config)(open_image(image))[None])
    finally:
        handle.remove()
    out = captured[0][0] if isinstance(captured[0], tuple | list) else captured[0]
    if out.ndim != 4:
        raise OptionError(f"layer {layer!r} gives no spatial maps (shape {tuple(out.shape)})")
    return out[0].float().numpy()


def save_grid(tiles: np.ndarray, out: str | os.PathLike, title: str, limit: int = 64) -> Path:
    """Write tiles (n, h, w[, c]) as one PNG grid."""
    plt = pyplot()

    tiles = tiles[:limit]
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.1 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, tile in zip(axes.flat, tiles, strict=False):
        ax.imshow(
            tile.squeeze(),
            cmap="gray" if tile.ndim == 2 or tile.shape[-1] == 1 else None,
            interpolation="nearest",
        )
    fig.suptitle(printable(title), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


def kernels(
    source: str,
    image: str | os.PathLike | None = None,
    layer: str | None = None,
    weights: str | os.PathLike = "auto",
    out: str | os.PathLike = ".",
) -> list[Path]:
    """Draw the first convolution's filters of a model or run, and optionally an image's feature maps."""
    from imagefit.runs import open_model

    model, data_config, _ = open_model(source, weights)
    name, conv = first_conv(model)
    written = [
        save_grid(kernel_grid(conv), Path(out) / "kernels.png", f"{name}: {conv.out_channels} filters")
    ]
    if image is not None:
        maps = feature_maps(model, data_config, image, layer or name)
        title = f"{layer or name} on {Path(image).name}: {len(maps)} maps"
        written.append(save_grid(maps, Path(out) / "feature_maps.png", title))
    return written
