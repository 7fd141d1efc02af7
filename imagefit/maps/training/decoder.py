"""Segmentation decoders trained for theme maps: their loss and their parameter groups.

A decoder (U-Net, FPN or DeepLabV3+ from segmentation_models_pytorch, on the pretrained
EfficientNet-Lite0 encoder, `imagefit.models.segmentation`) gives logits for every pixel of a crop,
so it trains on the crops of `imagefit.maps.training.crops` with a patch of one pixel: every pixel
its own target (-1 where ignored), with the same class balancing and dihedral augmentation as the
patch classifiers. Its loss is the class-weighted cross-entropy of the labelled pixels plus a Dice
term, which lifts the IoU of rare classes. It trains and maps as `DenseDecoder`
(`imagefit.maps.mapping.dense_networks`), on windows of any size.
"""

from __future__ import annotations

import torch
from torch import nn

from imagefit.maps.training.crops import IGNORED, PositionLoss


class DecoderLoss(nn.Module):
    """Cross-entropy over the labelled pixels (class-weighted with `weight`) plus `dice` x Dice loss."""

    def __init__(self, weight: torch.Tensor | None = None, dice: float = 1.0):
        super().__init__()
        from segmentation_models_pytorch.losses import DiceLoss

        self.ce = PositionLoss(weight)
        self.dice_weight = dice
        self.dice = DiceLoss("multiclass", from_logits=True, ignore_index=IGNORED)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.ce(logits, targets)
        if self.dice_weight and (targets >= 0).any():
            loss = loss + self.dice_weight * self.dice(logits, targets)
        return loss


def decoder_groups(net: nn.Module) -> list[list[str]]:
    """Parameter names of a DenseDecoder in coarse groups, network order: the encoder's stem and
    blocks, then the decoder with its segmentation head (trained at the stage's full rate)."""
    groups: dict[tuple[int, int], list[str]] = {}
    for name, _ in net.named_parameters():
        parts = name.split(".")
        if name.startswith("model.encoder."):
            key = (0, int(parts[4]) if parts[3] == "blocks" else -1)  # the stem before block 0
        else:
            key = (1, 0)
        groups.setdefault(key, []).append(name)
    return [groups[k] for k in sorted(groups)]
