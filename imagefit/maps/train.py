"""map-train: a patch classifier trained on tiles with the training engine, scratch or pretrained.

Scratch models are small CNNs from a spec (the seed's `larger_model` by default, 28-pixel patches);
any other name is a registry backbone with its pretrained weights (efficientnet_lite0 is bundled).
A small CNN trains on random patches of the training tiles (optionally class-balanced, rotated and
mirrored), validated on a fixed random sample of the validation tile's patches. A backbone trains
as it maps: fully convolutionally on random crops of the tiles, every patch position of a crop a
target (`imagefit.maps.crops`), validated on fixed crops of the validation tile. After every epoch
the DisplayMap callback draws the validation tile's ROI map.
The run folder is a normal imagefit run (config.json, model.safetensors, metrics.json, history.csv,
checkpoints/) with `maps/` figures; `imagefit map RUN TILE` maps tiles with it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imagefit._atomic import write_json
from imagefit.errors import ModelError, OptionError
from imagefit.inference.classifier import Classifier
from imagefit.maps.crops import CropBatches, CropSource, PositionLoss, fixed_crop_batches
from imagefit.maps.dense import DenseBackbone, add_dense_skips
from imagefit.maps.display_map import DisplayMap
from imagefit.maps.patches import PatchBatches, PatchSource, fixed_batches, load_labelled_patches
from imagefit.maps.tiles import Roi, TileSet
from imagefit.models.small_cnn import SmallCNN, parse_spec
from imagefit.runs import CONFIG, RunConfig, save_run
from imagefit.train.callbacks import Checkpoint, HistoryCSV, NaNGuard, ProgressBar, load_weights
from imagefit.train.callbacks.checkpoint import BEST
from imagefit.train.finetune import coarse_groups, parse_stages
from imagefit.train.loop import Trainer, seed_everything
from imagefit.train.optim import OptimSpec
from imagefit.train.scratch import CHECKPOINTS, _run_dir
from imagefit.train.stages import Stage

log = logging.getLogger(__name__)

SCRATCH_PATCH, PRETRAINED_PATCH = 28, 32
PRETRAINED_CROP = 192
# A backbone's validation crops hold ~800,000 positions: their accuracy is a steady guide, while
# their loss grows with confidence in regions whose labels are ambiguous (measured: val_loss rose
# from epoch 2 of 8 while val_acc and the held-out maps kept improving).
MONITORS = ("val_loss", "val_acc")


@dataclass
class MapTrainOptions:
    """How a map-train run trains; saved in config.json."""

    model: str = "larger_model"
    patch: int | None = None  # None: 28 for small CNNs, 32 for backbones
    epochs: int = 5
    steps: int = 200  # batches per epoch
    batch_size: int | None = None  # None: 64 patches (small CNNs), 8 crops (backbones)
    crop: int | None = None  # backbones: training crop side; None: 192
    lr: float | None = None  # None: 1e-3 (scratch), 5e-4 (pretrained)
    optimizer: str = "adamw"
    balance: bool = False
    augment: bool = True
    ignore: int | None = None
    valid_patches: int = 2000  # small CNNs; backbones validate on valid_patches // 64 crops
    roi: Roi | None = None  # validation map region; None: the first 300x300 pixels
    weights: str = "auto"
    stages: str | None = None  # backbones: finetune stages; None: the last 4 block groups, all epochs
    monitor: str | None = None  # the best epoch by: None: val_loss (small CNNs), val_acc (backbones)

    def __post_init__(self) -> None:
        if self.batch_size is None:
            self.batch_size = 64 if self.scratch else 8
        if self.epochs < 1 or self.steps < 1 or self.batch_size < 1 or self.valid_patches < 1:
            raise OptionError("epochs, steps, batch size and validation patches must be at least 1")
        if self.patch is None:
            self.patch = SCRATCH_PATCH if self.scratch else PRETRAINED_PATCH
        if self.crop is None and not self.scratch:
            self.crop = max(PRETRAINED_CROP, self.patch)
        if self.monitor is None:
            self.monitor = "val_loss" if self.scratch else "val_acc"
        if self.monitor not in MONITORS:
            raise OptionError(f"--monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}")
        if self.crop is not None and self.crop < self.patch:
            raise OptionError(f"--crop {self.crop} must be at least the patch size {self.patch}")
        if self.lr is None:
            self.lr = 1e-3 if self.scratch else 5e-4

    @property
    def scratch(self) -> bool:
        try:
            parse_spec(self.model)
        except ModelError:
            return False
        return True


@dataclass
class MapTrainResult:
    run_dir: Path
    metrics: dict
    classifier: Classifier


def train_map(
    tiles: str | Path, train: list[str], valid: str, out: str | Path | None = None, seed: int = 0,
    progress: bool = True, device: str | None = None, **options,
) -> MapTrainResult:  # fmt: skip
    """Train a patch classifier on tiles `train`, validated (and mapped each epoch) on tile `valid`."""
    started = time.perf_counter()
    opts = MapTrainOptions(**options)
    tileset = TileSet(tiles, opts.ignore)
    roi = opts.roi or _default_roi(tileset, valid)
    seed_everything(seed)
    model, data_config, config = _model_and_config(tileset, opts, seed, train, valid, roi)
    if opts.scratch:
        net = model
        source, batches, valid_batches = _data(tileset, opts, train, valid, data_config, seed)
    else:  # a backbone trains as the dense network it maps with
        net = DenseBackbone(model, opts.patch)
        source, batches, valid_batches = _crop_data(tileset, opts, train, valid, data_config, seed)
    run_dir = _run_dir(out, resume=False) if out is not None else _new_dir()
    write_json(run_dir / CONFIG, asdict(config))
    display = DisplayMap(tileset, valid, roi, opts.patch, data_config, run_dir / "maps")
    checkpoint = Checkpoint(run_dir / CHECKPOINTS, monitor=opts.monitor)
    callbacks = [NaNGuard(), HistoryCSV(run_dir / "history.csv"), checkpoint, display]
    callbacks.append(ProgressBar(disable=not progress))
    loss = None if opts.scratch else _position_loss(source, opts)
    trainer = Trainer(
        net, batches, valid_batches, optim=OptimSpec(opts.optimizer, opts.lr), stages=_stages(model, opts),
        callbacks=callbacks, device=device, seed=seed, loss=loss,
        eval_loss=None if opts.scratch else PositionLoss(),  # validation: the plain, unweighted loss
    )  # fmt: skip
    trainer.fit()
    if trainer.epoch == 0:
        raise OptionError(trainer.stop_reason or "training stopped before the first epoch ended")
    best = load_weights(run_dir / CHECKPOINTS / BEST, trainer.model)
    scores = trainer.evaluate(valid_batches)
    net = trainer.model.cpu().eval()
    model = net if opts.scratch else net.model
    metrics = {
        "valid_patches": {"n": scores["n"], "loss": scores["loss"], "accuracy": scores["acc"]},
        "valid_map": {"ref": valid, "roi": [list(p) for p in roi], **display.evaluate(net)},
        "best": best,
        "epochs": trainer.epoch,
        "train_patches_available": source.positions,
        "seconds": {"total": round(time.perf_counter() - started, 3)},
    }
    classifier = Classifier(model, tileset.classes, data_config, {"run": str(run_dir)})
    save_run(run_dir, classifier, config, metrics)
    return MapTrainResult(run_dir, metrics, classifier)


def _stages(model: nn.Module, opts: MapTrainOptions) -> list[Stage]:
    """All parameters for a small CNN; for a backbone, its later block groups (backward through the
    early, high-resolution depthwise blocks is what makes CPU fine-tuning slow)."""
    if opts.scratch:
        return [Stage("train", opts.epochs)]
    groups = [[f"model.{name}" for name in group] for group in coarse_groups(model)]  # in DenseBackbone
    return parse_stages(opts.stages or f"top4:{opts.epochs}:{opts.lr}", len(groups), groups)


def _data(tileset: TileSet, opts: MapTrainOptions, train, valid: str, data_config: dict, seed: int):
    """The training patches' source, epochs of random batches from it, and fixed validation batches."""
    source = PatchSource(tileset, train, opts.patch)
    batches = PatchBatches(source, opts.steps, opts.batch_size, data_config, opts.balance, opts.augment, seed)
    patches, labels = load_labelled_patches(
        [valid], opts.patch, limit=opts.valid_patches, shuffle=True, tiles=tileset, seed=seed
    )
    return source, batches, fixed_batches(patches, labels, 256, data_config)


def _crop_data(tileset: TileSet, opts: MapTrainOptions, train, valid: str, data_config: dict, seed: int):
    """Crops of the training tiles in epochs of random batches, and fixed crops of the validation tile."""
    smallest = min(min(tileset.tile(ref).height, tileset.tile(ref).width) for ref in [*train, valid])
    if smallest < opts.crop:
        log.info("crops of %d pixels: the smallest tile is %d pixels across", smallest, smallest)
    crop = max(min(opts.crop, smallest), opts.patch)  # a patch larger than a tile fails below, naming it
    source = CropSource(tileset, train, crop, opts.patch)
    batches = CropBatches(source, opts.steps, opts.batch_size, data_config, opts.balance, opts.augment, seed)
    n = max(1, opts.valid_patches // 64)
    return source, batches, fixed_crop_batches(tileset, valid, crop, opts.patch, n, 16, data_config, seed)


def _position_loss(source: CropSource, opts: MapTrainOptions) -> PositionLoss:
    """The crops' loss; with balancing, classes weighted inversely to their share of the positions
    the crops hold (measured on crops drawn as training draws them), as balanced patches are."""
    if not opts.balance:
        return PositionLoss()
    _, y = source.sample(256, np.random.default_rng(12345), balance=True)
    counts = np.bincount(y[y >= 0], minlength=len(source.tiles.classes)).astype(np.float64)
    present = counts > 0
    weight = np.zeros_like(counts)
    weight[present] = counts[present].sum() / (present.sum() * counts[present])
    return PositionLoss(torch.tensor(weight, dtype=torch.float32))


def _model_and_config(tileset: TileSet, opts: MapTrainOptions, seed: int, train, valid, roi):
    """The untrained patch classifier, its preprocessing and the run's config."""
    n = len(tileset.classes)
    if opts.scratch:
        model: nn.Module = SmallCNN(opts.model, 3, n, opts.patch)
        from timm.data import resolve_model_data_config

        data_config = dict(resolve_model_data_config(model))
        backbone, arch, weights, extra = model.arch, model.spec, "none", {"small_cnn": model.describe()}
    else:
        from imagefit.models.registry import create_backbone

        bb = create_backbone(opts.model, opts.weights, num_classes=n, image_size=opts.patch)
        model, data_config, extra = add_dense_skips(bb.model), bb.data_config, {"dense_skips": True}
        backbone, arch, weights = bb.spec.name, bb.spec.arch, bb.weights
    maps = {"patch": opts.patch, "key": tileset.key.to_json(), "train": list(train), "valid": valid}
    options = {**asdict(opts), "roi": [list(p) for p in roi], "map": maps, **extra}
    config = RunConfig(
        backbone=backbone, arch=arch, weights=weights, classes=tileset.classes, data_config=data_config,
        strategy="map", seed=seed, data=str(tileset.root.resolve()), layout="tiles", options=options,
    )  # fmt: skip
    return model, data_config, config


def _default_roi(tileset: TileSet, ref: str) -> Roi:
    tile = tileset.tile(ref)
    return ((0, 0), (min(300, tile.width), min(300, tile.height)))


def _new_dir() -> Path:
    from imagefit.runs import new_run_dir

    return new_run_dir(prefix="map")
