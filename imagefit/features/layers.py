"""Which activations become an embedding: pre-logits or any named layer, pooled, optionally flip-averaged."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from imagefit.errors import OptionError

PRE_LOGITS = "pre-logits"
POOLS = ("avg", "max")
# What the network sees of each preprocessed image: itself, its mirror image, or one corner zoomed in
# (87.5 % of each side, resized back); test-time augmentation averages predictions over views.
VIEWS = ("image", "mirror", "crop-tl", "crop-tr", "crop-bl", "crop-br")
CROP_KEEP = 0.875


class Embedding(nn.Module):
    """forward(x) -> (batch, dim) vectors from `layer` of a timm-style model.

    `pre-logits` with avg pooling is what the model's classifier reads; any other layer is taken
    from the named module's output and pooled over its spatial positions. With `flip`, the vector
    is the mean of the image's and its mirror image's, so mirrored copies embed alike. `view`
    (one of VIEWS) transforms the batch before anything else.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str = PRE_LOGITS,
        pool: str = "avg",
        flip: bool = False,
        view: str = "image",
    ):
        super().__init__()
        if pool not in POOLS:
            raise OptionError(f"unknown pooling {pool!r}: choose avg or max")
        if view not in VIEWS:
            raise OptionError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
        self.model, self.layer, self.pool, self.flip, self.view = model, layer, pool, flip, view
        self._module = None if layer == PRE_LOGITS else _named_module(model, layer)
        self._captured: torch.Tensor | None = None
        if self._module is not None:
            self._module.register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs, output) -> None:
        self._captured = output[0] if isinstance(output, tuple | list) else output

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        features = self.model.forward_features(x)
        if self._module is None and self.pool == "avg":
            return self.model.forward_head(features, pre_logits=True)
        if self._module is not None:
            features, self._captured = self._captured, None
        return _pool(features, self.pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = apply_view(x, self.view)
        if self.flip:
            return (self._embed(x) + self._embed(x.flip(-1))) / 2
        return self._embed(x)

    def describe(self) -> str:
        """A short name for keys and file metadata."""
        view = "" if self.view == "image" else f"/{self.view}"
        return f"{self.layer}/{self.pool}" + ("/flip" if self.flip else "") + view


def apply_view(x: torch.Tensor, view: str) -> torch.Tensor:
    """A batch (n, c, h, w) as `view` shows it: unchanged, mirrored, or a corner zoomed to full size."""
    if view == "image":
        return x
    if view == "mirror":
        return x.flip(-1)
    h, w = int(x.shape[-2]), int(x.shape[-1])  # constants in an exported graph: its input size is fixed
    ch, cw = round(h * CROP_KEEP), round(w * CROP_KEEP)
    top = 0 if view[-2] == "t" else h - ch
    left = 0 if view[-1] == "l" else w - cw
    corner = x[..., top : top + ch, left : left + cw]
    return F.interpolate(corner, size=(h, w), mode="bilinear", align_corners=False)


def _pool(features: torch.Tensor, pool: str) -> torch.Tensor:
    if features.ndim == 2:
        return features
    if features.ndim == 3:  # tokens (batch, n, dim), as vision transformers give
        return features.mean(1) if pool == "avg" else features.amax(1)
    return features.mean((2, 3)) if pool == "avg" else features.amax((2, 3))


def _named_module(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        top = [name for name, _ in model.named_children()][:8]
        raise OptionError(
            f"no layer {layer!r} in {type(model).__name__}: use pre-logits or a module name "
            f"such as {', '.join(top)} (imagefit summary lists them all)"
        )
    return modules[layer]


@torch.no_grad()
def embedding_dim(net: Embedding, input_size: tuple[int, int, int]) -> int:
    """Length of the vectors `net` gives, found with one dummy image."""
    if net.layer == PRE_LOGITS:
        return int(net.model.num_features)
    was_training = net.training
    out = net.eval()(torch.zeros(1, *input_size))
    net.train(was_training)
    return int(out.shape[1])
