"""Networks run fully convolutionally: logits for every patch position (or pixel) of a window at once.

A small CNN becomes exactly dense: its dense layers become convolutions (the first one with the
feature map's size as kernel, the others 1x1), and every pooling or strided convolution is run at
stride 1, the layers after it dilated by the stride so far ("a trous", the dilated form of
shift-and-stitch). The output at (i, j) is then the network's logits for the patch whose top-left
corner is (i, j), equal to running the network on that patch alone.

A pretrained backbone (stride 32, padded convolutions) runs once over the window as a fully
convolutional network: its classifier applied to every feature cell as a 1x1 convolution, refined
by class scores of its stride-16 and stride-8 features (FCN-8s skips, trained by map-train), and
upsampled to every pixel. It is trained that way, on crops of tiles, so the map is what was trained.

A segmentation decoder gives logits for every pixel of a window of any size (padded to its
encoder's stride): not exact either, so maps blend its overlapping windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imagefit.errors import ModelError
from imagefit.maps.mapping.defaults import ALIGN
from imagefit.models.dense_skips import SKIP_REDUCTIONS
from imagefit.models.small_cnn import SmallCNN


class DenseSmallCNN(nn.Module):
    """A SmallCNN as one fully convolutional network: (N, 3, H, W) -> (N, classes, H-P+1, W-P+1)."""

    exact = True

    def __init__(self, model: SmallCNN):
        super().__init__()
        self.patch = tuple(model.input_size)
        self.margin, self.reduction = 0, 1
        layers, dilation = _dense_features(model.features)
        maps = [s for s in model.layer_shapes if len(s) == 3]
        map_shape = maps[-1] if maps else (model.in_chans, *self.patch)
        layers += _dense_head([*model.pre_logits, model.head], map_shape, dilation)
        self.net = nn.Sequential(*layers).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        rows, cols = x.shape[2] - self.patch[0] + 1, x.shape[3] - self.patch[1] + 1
        return out[:, :, :rows, :cols]  # a pooling floor can leave a patch's last pixels unread


def _dense_features(features: nn.Sequential) -> tuple[list[nn.Module], int]:
    """The feature layers at stride 1, dilated; and the dilation the layers after them need."""
    out: list[nn.Module] = []
    d = 1
    for m in features:
        if isinstance(m, nn.Conv2d):
            if not _unpadded(m):
                raise ModelError("a network with 'same' padding cannot be mapped densely: use --naive")
            out.append(_dilated_conv(m, d))
            d *= _pair(m.stride)[0]
        elif isinstance(m, nn.MaxPool2d):
            k, s = _pair(m.kernel_size)[0], _pair(m.stride)[0]
            out.append(nn.MaxPool2d(k, stride=1, dilation=d))
            d *= s
        elif isinstance(m, nn.AvgPool2d):
            out.append(_avg_as_conv(m, d, _channels_before(out)))
            d *= _pair(m.stride)[0]
        elif isinstance(m, nn.ReLU):
            out.append(nn.ReLU(inplace=True))
        elif isinstance(m, nn.BatchNorm2d):
            out.append(m)
        elif not isinstance(m, nn.Dropout):
            raise ModelError(f"cannot map {type(m).__name__} layers densely: use --naive")
    return out, d


def _dense_head(layers, map_shape: tuple[int, ...], d: int) -> list[nn.Module]:
    """Dense layers as convolutions: the first over the feature map's extent, dilated; then 1x1."""
    out: list[nn.Module] = []
    shape = map_shape
    for m in layers:
        if isinstance(m, nn.Linear):
            if shape is not None:
                c, h, w = shape
                conv = nn.Conv2d(c, m.out_features, (h, w), dilation=d)
                conv.weight.data = m.weight.data.reshape(m.out_features, c, h, w).clone()
                shape = None
            else:
                conv = nn.Conv2d(m.in_features, m.out_features, 1)
                conv.weight.data = m.weight.data.reshape(m.out_features, m.in_features, 1, 1).clone()
            conv.bias.data = m.bias.data.clone()
            out.append(conv)
        elif isinstance(m, nn.BatchNorm1d):
            out.append(_bn2d(m))
        elif isinstance(m, nn.ReLU):
            out.append(nn.ReLU(inplace=True))
        elif not isinstance(m, nn.Flatten | nn.Dropout | nn.Identity):
            raise ModelError(f"cannot map {type(m).__name__} layers densely: use --naive")
    return out


def _unpadded(m: nn.Conv2d) -> bool:
    """A plain convolution without padding (timm's Conv2dSame pads on the fly: not this)."""
    return type(m) is nn.Conv2d and (m.padding == "valid" or all(p == 0 for p in _pair(m.padding)))


def _dilated_conv(m: nn.Conv2d, d: int) -> nn.Conv2d:
    conv = nn.Conv2d(
        m.in_channels, m.out_channels, m.kernel_size, dilation=_pair(m.dilation)[0] * d,
        groups=m.groups, bias=m.bias is not None,
    )  # fmt: skip
    conv.load_state_dict(m.state_dict())
    return conv


def _avg_as_conv(m: nn.AvgPool2d, d: int, channels: int) -> nn.Conv2d:
    k = _pair(m.kernel_size)[0]
    conv = nn.Conv2d(channels, channels, k, dilation=d, groups=channels, bias=False)
    conv.weight.data.fill_(1.0 / (k * k))
    return conv


def _channels_before(layers: list[nn.Module]) -> int:
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ModelError("average pooling before any convolution cannot be mapped densely: use --naive")
    return convs[-1].out_channels


def _bn2d(m: nn.BatchNorm1d) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(m.num_features, eps=m.eps)
    bn.load_state_dict(m.state_dict())
    return bn.eval()


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, tuple | list) else (v, v)


class DenseBackbone(nn.Module):
    """A timm classifier run fully convolutionally: logits for every patch position of a window.

    The classifier is applied to every stride-32 feature cell as a 1x1 convolution (sharing the
    model's weights, so that training this module trains the model); with `add_dense_skips`, class
    scores of the stride-16 and stride-8 features are added on the way up (FCN-8s). The scores are
    upsampled bilinearly to every pixel, and a patch position gets the logits of its centre pixel.
    map-train trains backbones through this very function on crops of tiles
    (`imagefit.maps.training.crops`), so the map is what was trained. It is not equal to classifying each
    patch alone: the padded convolutions see the context around a patch.
    """

    exact = False

    def __init__(self, model: nn.Module, patch: int):
        super().__init__()
        self.reduction = int(model.feature_info[-1]["reduction"])
        if patch % self.reduction:
            raise ModelError(
                f"patch {patch} must be a multiple of {self.reduction} to map this backbone densely"
            )
        self.model, self.patch = model.eval(), (patch, patch)
        self.margin = 2 * self.reduction  # context beyond a block, so that blocks stitch smoothly

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head, skips = self.model.get_classifier(), getattr(self.model, "dense_skips", None)
        if skips is None:
            features, earlier = self.model.forward_features(x), []
        else:
            features, earlier = self.model.forward_intermediates(x, indices=self.model.dense_skip_indices)
        weight = head.weight[:, :, None, None].to(features.dtype)
        scores = F.conv2d(features, weight, head.bias.to(features.dtype))
        earlier = dict(zip(sorted(SKIP_REDUCTIONS), earlier, strict=False))  # timm: in network order
        for r in SKIP_REDUCTIONS:  # stride 16, then 8
            if r in earlier:
                scores = _up(scores, earlier[r].shape[2:]) + skips[str(r)](earlier[r])
        c = self.patch[0] // 2
        rows, cols = x.shape[2] - self.patch[0] + 1, x.shape[3] - self.patch[1] + 1
        return _up(scores, x.shape[2:])[:, :, c : c + rows, c : c + cols]


def _up(t: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)


class DenseDecoder(nn.Module):
    """A decoder as a map engine's network: (N, 3, H, W) -> logits (N, classes, H, W), any H and W.

    The window is padded by reflection to a multiple of the encoder's stride, and the padding cut off
    the logits. Its logits depend on the whole window (not exact): maps blend overlapping windows.
    """

    exact = False

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.patch = model.eval().to(memory_format=torch.channels_last), (1, 1)
        self.margin, self.reduction = 0, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        pad_h, pad_w = -h % ALIGN, -w % ALIGN
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        x = x.contiguous(memory_format=torch.channels_last)  # measured ~1.6x faster on a CPU
        return self.model(x)[:, :, :h, :w].contiguous()


def dense_model(model: nn.Module, patch: int) -> nn.Module:
    """The dense form of a patch classifier or decoder: exact for small CNNs, approximate for the rest."""
    if isinstance(model, DenseSmallCNN | DenseBackbone | DenseDecoder):
        return model
    if hasattr(model, "segmentation_record"):  # a decoder: logits for every pixel
        return DenseDecoder(model)
    if isinstance(model, SmallCNN):
        return DenseSmallCNN(model.eval())
    if hasattr(model, "forward_features") and hasattr(model, "feature_info"):
        return DenseBackbone(model, patch)
    raise ModelError(f"cannot map {type(model).__name__} densely: use --naive")
