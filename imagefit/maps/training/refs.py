"""Which images train and which validate: several held-out images from several tiles, pooled.

One validation image says little about places the model has not seen (on the aerial tiles, the
ranking of two runs by one held-out image of a training tile matched their ranking on an unseen
tile half of the time). So a map run validates on several images, one from each of several tiles
(a ref's tile is its name without the trailing number: T3P01 -> T3P), their crops pooled, and
keeps its best epoch by their pooled mIoU.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from imagefit.errors import OptionError
from imagefit.maps.inputs.tileset import TileSet
from imagefit.maps.training.crops import CropSource
from imagefit.maps.training.patches import fixed_batches

MAX_VALID_TILES = 4  # held-out images (one per tile) chosen by the tool
REFS_PER_VALID = 12  # an image held out for every this many refs (below two: the last ref alone)
MIN_VALID_CROPS = 24  # pooled validation crops, at least


def tile_of(ref: str) -> str:
    """The tile a ref belongs to: its name without the trailing digits (T3P01 -> T3P; A2 -> A)."""
    return re.sub(r"\d+$", "", ref) or ref


def choose_valid(refs: Sequence[str]) -> list[str]:
    """Held-out images for validation: with 2 * REFS_PER_VALID refs or more, one image (the last) of
    each of up to MAX_VALID_TILES tiles spread over those that have two images or more; else the
    last ref."""
    refs = sorted(refs)
    by_tile: dict[str, list[str]] = {}
    for ref in refs:
        by_tile.setdefault(tile_of(ref), []).append(ref)
    several = [tile for tile, members in by_tile.items() if len(members) > 1]
    n = min(MAX_VALID_TILES, len(refs) // REFS_PER_VALID, len(several))
    if n < 2:
        return [refs[-1]]
    picks = np.linspace(0, len(several) - 1, n).round().astype(int)
    return [by_tile[several[i]][-1] for i in picks]


def split_refs(
    refs: list[str], train: list[str], valid: str | Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The training refs and the validation refs: as given; else, when the training refs are given, the
    last ref not among them validates; else `choose_valid` picks them and the others train."""
    if isinstance(valid, str):
        valid = [v for v in valid.split(",") if v]
    if not valid:
        rest = [ref for ref in refs if ref not in train]
        if not rest:
            raise OptionError("every ref trains: name a validation tile with --valid")
        valid = [rest[-1]] if train else choose_valid(rest)
    valid = list(valid)
    both = sorted(set(valid) & set(train))
    if both:
        raise OptionError(f"{', '.join(both)} both train and validate: leave them out of --train or --valid")
    train = train or [ref for ref in refs if ref not in valid]
    if not train:
        raise OptionError(
            f"only {', '.join(valid)} have labels: a map run needs a training tile besides --valid"
        )
    return train, valid


def pooled_crop_batches(
    tiles: TileSet, refs: Sequence[str], crop: int, patch: int, n: int, batch_size: int, data_config: dict,
    seed: int = 0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """At least MIN_VALID_CROPS (and `n`) random crops drawn once, as many from each of `refs`, as
    normalised batches with targets: the validation data, pooled."""
    each = -(-max(n, MIN_VALID_CROPS) // len(refs)) if len(refs) > 1 else n
    xs, ys = [], []
    for i, ref in enumerate(refs):
        rng = np.random.default_rng(seed if len(refs) == 1 else [seed, i])  # one ref: as ever drawn
        x, y = CropSource(tiles, [ref], crop, patch).sample(each, rng)
        xs.append(x)
        ys.append(y)
    return fixed_batches(np.concatenate(xs), np.concatenate(ys), batch_size, data_config)
