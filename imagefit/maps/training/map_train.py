"""map-train: a patch classifier trained on tiles with the training engine, scratch or pretrained.

Scratch models are small CNNs from a spec (the seed's `larger_model` by default, 28-pixel patches);
any other name is a registry backbone with its pretrained weights (efficientnet_lite0 is bundled).
A small CNN trains on random patches of the training tiles (optionally class-balanced, rotated and
mirrored), validated on a fixed random sample of the validation tile's patches. A backbone trains
as it maps: fully convolutionally on random crops of the tiles, every patch position of a crop a
target (`imagefit.maps.training.crops`), validated on fixed crops of the validation tile. A
segmentation decoder (`--model unet|fpn|deeplabv3plus`, on the bundled Lite0 encoder) trains the
same way with every pixel of a crop its own target (`imagefit.maps.training.decoder`), and with
`unlabelled` images of the area to map also learns from them (`imagefit.maps.training.unlabelled`).
Backbones and decoders validate on crops of several held-out images pooled (`imagefit.maps.training.refs`).
`budget` fits the epochs to minutes (TimeBudget). After every epoch the DisplayMap callback draws the
first validation image's ROI map; after training, a temperature is fitted on that ROI's labelled
pixels (`imagefit.maps.training.calibrate`).
The run folder is a normal imagefit run (config.json, model.safetensors, metrics.json, history.csv,
checkpoints/) with `maps/` figures; `imagefit map RUN TILE` maps tiles with it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imagefit.errors import DataError
from imagefit.inference.classifier import Classifier
from imagefit.maps.inputs.tileset import Roi, TileSet
from imagefit.maps.mapping.dense_networks import DenseBackbone, DenseDecoder
from imagefit.maps.training.calibrate import calibrate_map
from imagefit.maps.training.crops import CropBatches, CropSource, PositionLoss
from imagefit.maps.training.decoder import DecoderLoss, decoder_groups
from imagefit.maps.training.display_map import DisplayMap
from imagefit.maps.training.options import TRAINED_BLOCKS, VALID_ROI, MapTrainOptions
from imagefit.maps.training.patches import PatchBatches, PatchSource, fixed_batches, load_labelled_patches
from imagefit.maps.training.refs import pooled_crop_batches, split_refs
from imagefit.models.build import model_record
from imagefit.models.dense_skips import add_dense_skips
from imagefit.models.small_cnn import SmallCNN
from imagefit.runs import RunConfig
from imagefit.train.callbacks import TimeBudget
from imagefit.train.callbacks.time_budget import CLOCKS
from imagefit.train.callbacks.tracking import trackers
from imagefit.train.engine.optim import OptimSpec
from imagefit.train.engine.stages import Stage, check_depth, coarse_groups, parse_stages, top_groups
from imagefit.train.engine.trainer import Trainer, seed_everything
from imagefit.train.epochs import default_callbacks, fit_epochs
from imagefit.train.lifecycle import Strategy, TrainResult, run_training

log = logging.getLogger(__name__)


class MapStrategy(Strategy):
    """A patch classifier trained on tiles; the validation tile's ROI is mapped after every epoch."""

    name = "map"

    def __init__(self, options: MapTrainOptions, train: list[str] | None, valid, **run):
        super().__init__(options, **run)
        self.train_refs, self.valid_refs = list(train or []), valid

    @property
    def valid_ref(self) -> str:
        """The first validation ref: its ROI is mapped after every epoch and calibrates the run."""
        return self.valid_refs[0]

    def read_data(self, data) -> TileSet:
        tileset = TileSet(data, self.options.ignore, **self.options.inputs())
        self.train_refs, self.valid_refs = split_refs(tileset.refs(), self.train_refs, self.valid_refs)
        for ref in [*self.train_refs, *self.valid_refs]:
            tileset.tile(ref)  # files, sizes, CRSs and bands checked before a run folder is made
        self.roi = self.options.roi or _default_roi(tileset, self.valid_ref)
        return tileset

    def summary(self, tileset: TileSet) -> dict:
        """The classes, bands and the tiles that train and validate."""
        tiles = {"train_tiles": ",".join(self.train_refs), "valid_tile": self.valid_ref}
        return {"classes": len(tileset.classes), "bands": tileset.bands, **tiles}

    def build(self, data, tileset: TileSet):
        seed_everything(self.seed)
        model, _, config = _model_and_config(
            tileset, self.options, self.seed, self.train_refs, self.valid_refs, self.roi
        )
        return model, config

    def fit(self, folder, tileset: TileSet, model, config, resume):
        opts, seed, train, valid = self.options, self.seed, self.train_refs, self.valid_refs
        data_config = config.data_config
        if opts.scratch:
            net = model
            source, batches, valid_batches = _data(tileset, opts, train, valid, data_config, seed)
        elif opts.decoder:  # every pixel of a crop a target
            net = DenseDecoder(model)
            source, batches, valid_batches = _crop_data(tileset, opts, train, valid, data_config, seed)
        else:  # a backbone trains as the dense network it maps with
            net = DenseBackbone(model, opts.patch)
            source, batches, valid_batches = _crop_data(tileset, opts, train, valid, data_config, seed)
        display = DisplayMap(tileset, self.valid_ref, self.roi, opts.patch, data_config, folder.maps)
        budget = [TimeBudget(opts.budget, clock=CLOCKS[opts.budget_clock])] if opts.budget else []
        callbacks = default_callbacks(
            folder, self.progress, monitor=opts.monitor, extra=[*budget, display, *self.callbacks]
        )
        loss = None if opts.scratch else _position_loss(source, opts)
        unlabelled = _unlabelled(tileset, opts, batches, data_config, seed) if opts.unlabelled else None
        trainer = Trainer(
            net, batches, valid_batches, optim=OptimSpec(opts.optimizer, opts.lr),
            stages=_stages(net, opts),
            callbacks=callbacks, device=self.device, seed=seed,
            loss=loss, eval_loss=None if opts.scratch else PositionLoss(),  # validation: plain, unweighted
            aux_loss=unlabelled, miou_classes=None if opts.scratch else len(tileset.classes),
        )  # fmt: skip
        best = fit_epochs(trainer, folder, resume)
        scores = trainer.evaluate(valid_batches)
        net = trainer.model.cpu().eval()
        model = net if opts.scratch else net.model
        model.to(memory_format=torch.contiguous_format)  # a decoder trains channels_last; saved plain
        metrics = {
            "valid_patches": {
                "n": scores["n"],
                "loss": scores["loss"],
                "accuracy": scores["acc"],
                "miou": scores.get("miou"),
            },
            "valid_refs": valid,
            "valid_map": {"ref": self.valid_ref, "roi": [list(p) for p in self.roi], **display.evaluate(net)},
            "best": best,
            "epochs": trainer.epoch,
            "train_patches_available": source.positions,
        }
        if budget:
            metrics["budget"] = {
                "minutes": opts.budget,
                "clock": opts.budget_clock,
                "seconds_per_epoch": budget[0].seconds_per_epoch,
            }
        if unlabelled is not None:
            paths = [str(p) for p in unlabelled.images.paths]
            metrics["unlabelled"] = {"method": opts.semi, "images": len(paths), "paths": paths}
        return Classifier(model, tileset.classes, data_config, {"run": str(folder.path)}), metrics

    def trust(self, classifier, tileset: TileSet, config) -> dict:
        """A temperature fitted on the validation region's labelled pixels (unless --no-calibrate),
        kept in `config.calibration`: `imagefit map` divides the logits by it."""
        opts = self.options
        if not opts.calibrate:
            return {}
        data_config = config.data_config
        found, metrics = calibrate_map(
            classifier.model, tileset, self.valid_ref, self.roi, opts.patch, data_config, self.seed
        )
        if found is not None:
            config.calibration = found.to_dict()
            log.info("calibration: temperature %.3f, ECE %.4f -> %.4f", found.temperature,
                     metrics["ece_uncalibrated"], metrics["ece"])  # fmt: skip
        return metrics

    def predict_test(self, folder, classifier, tileset) -> None:
        """Map runs have no test images: `imagefit map` maps tiles."""

    def report(self, folder, classifier, tileset) -> None:
        """The maps drawn after every epoch (RUN/maps/) are the map run's report."""


def train_map(
    tiles: str | Path | None, train: list[str] | None = None, valid: str | list[str] | None = None,
    out: str | Path | None = None, seed: int = 0, progress: bool = True, device: str | None = None,
    callbacks: Sequence = (), track: str | Sequence[str] | None = None, **options,
) -> TrainResult:  # fmt: skip
    """Train a patch classifier on tiles `train`, validated on the tiles `valid` (a ref, refs, or
    'A,B'; the first is mapped each epoch). Defaults (`split_refs`): with `train` given, the last
    other ref validates; else several held-out images of several tiles (`choose_valid`), and every
    other ref trains. `tiles` is the seeds' folder, or None with `images`/`labels`, `pairs` or
    `vector` options saying where the tiles are. `unlabelled` (files, folders, globs) adds images
    of the area to map, never their labels; `budget` fits the training to minutes. `track` logs the
    run as `imagefit.train` does (None: $IMAGEFIT_TRACK)."""
    callbacks = [*callbacks, *trackers(track)]
    strategy = MapStrategy(
        MapTrainOptions(**options), train, valid, seed=seed, progress=progress, device=device,
        callbacks=callbacks,
    )  # fmt: skip
    return run_training(strategy, tiles, out)


def _stages(net: nn.Module, opts: MapTrainOptions) -> list[Stage]:
    """All parameters for a small CNN; for a backbone or a decoder, the --stages given, else one stage
    training the later block groups (TRAINED_BLOCKS) and the classifier or decoder above them."""
    if opts.scratch:
        return [Stage("train", opts.epochs)]
    if opts.decoder:
        groups = decoder_groups(net)
    else:
        groups = [[f"model.{name}" for name in group] for group in coarse_groups(net.model)]
    if opts.stages:
        return parse_stages(opts.stages, len(groups), groups)
    return [_top_stage(groups, TRAINED_BLOCKS[opts.kind], opts.epochs, opts.lr)]


def _top_stage(groups: list[list[str]], depth: int, epochs: int, lr: float) -> Stage:
    """The stage --stages writes `topN:EPOCHS:LR`: the last of the parameter `groups` at `lr`, the
    `depth` groups below it at rates falling to a tenth of it with depth, every other one frozen."""
    check_depth(depth, len(groups))
    return Stage(f"top{depth}:{epochs}:{lr}", epochs, lr, top_groups(depth, groups))  # named as in --stages


def _data(tileset: TileSet, opts: MapTrainOptions, train, valid: list[str], data_config: dict, seed: int):
    """The training patches' source, epochs of random batches from it, and fixed validation batches."""
    source = PatchSource(tileset, train, opts.patch)
    batches = PatchBatches(source, opts.steps, opts.batch_size, data_config, opts.balance, opts.augment, seed)
    patches, labels = load_labelled_patches(
        valid, opts.patch, limit=opts.valid_patches, shuffle=True, tiles=tileset, seed=seed
    )
    return source, batches, fixed_batches(patches, labels, 256, data_config)


def _crop_data(
    tileset: TileSet, opts: MapTrainOptions, train, valid: list[str], data_config: dict, seed: int
):
    """Crops of the training tiles in epochs of random batches, and fixed crops of the validation tiles."""
    smallest = min(min(tileset.tile(ref).height, tileset.tile(ref).width) for ref in [*train, *valid])
    if smallest < opts.crop:
        log.info("crops of %d pixels: the smallest tile is %d pixels across", smallest, smallest)
    crop = max(min(opts.crop, smallest), opts.patch)  # a patch larger than a tile fails below, naming it
    source = CropSource(tileset, train, crop, opts.patch)
    batches = CropBatches(
        source, opts.steps, opts.batch_size, data_config, opts.balance, opts.augment, seed, jitter=opts.jitter
    )
    n = max(1, opts.valid_patches // 64)
    return source, batches, pooled_crop_batches(tileset, valid, crop, opts.patch, n, 16, data_config, seed)


def _unlabelled(tileset: TileSet, opts: MapTrainOptions, batches: CropBatches, data_config, seed: int):
    """The semi-supervised loss on the unlabelled images (their pixels only), crops as the labelled ones."""
    from imagefit.maps.training.unlabelled import UnlabelledImages, semi_supervised

    images = UnlabelledImages(opts.unlabelled, batches.source.crop, opts.bands)
    if images.bands != tileset.bands:
        raise DataError(f"the unlabelled images have {images.bands} band(s), the tiles {tileset.bands}: "
                        "give images of the same bands (or choose them with --bands)")  # fmt: skip
    log.info("unlabelled: %d images (%s)", len(images.paths), opts.semi)
    return semi_supervised(
        opts.semi, images, data_config, batch_size=opts.unlabelled_batch, weight=opts.unlabelled_weight,
        share=opts.pseudo_share, seed=seed,
    )  # fmt: skip


def _position_loss(source: CropSource, opts: MapTrainOptions) -> nn.Module:
    """The crops' loss; with balancing, classes weighted inversely to their share of the positions
    the crops hold (measured on crops drawn as training draws them), as balanced patches are.
    A decoder's loss adds a Dice term, and weights classes by the square root of that."""
    if not opts.balance:
        return DecoderLoss(None, opts.dice) if opts.decoder else PositionLoss()
    _, y = source.sample(256, np.random.default_rng(12345), balance=True)
    counts = np.bincount(y[y >= 0], minlength=len(source.tiles.classes)).astype(np.float64)
    present = counts > 0
    weight = np.zeros_like(counts)
    weight[present] = counts[present].sum() / (present.sum() * counts[present])
    if opts.decoder:  # its Dice term lifts rare classes already: full weights over-predicted the rarest
        return DecoderLoss(torch.tensor(np.sqrt(weight), dtype=torch.float32), opts.dice)
    return PositionLoss(torch.tensor(weight, dtype=torch.float32))


def _model_and_config(tileset: TileSet, opts: MapTrainOptions, seed: int, train, valid, roi):
    """The untrained patch classifier, its preprocessing and the run's config."""
    n = len(tileset.classes)
    if opts.scratch:
        model: nn.Module = SmallCNN(opts.model, tileset.bands, n, opts.patch)
        from timm.data import resolve_model_data_config

        data_config = dict(resolve_model_data_config(model))
        backbone, arch, weights, extra = model.arch, model.spec, "none", {"small_cnn": model.describe()}
    elif opts.decoder:
        from imagefit.models.segmentation import DEFAULT_ENCODER, create_decoder

        model, weights, data_config = create_decoder(
            opts.model, n, DEFAULT_ENCODER, opts.weights, in_chans=tileset.bands
        )
        backbone, arch, extra = DEFAULT_ENCODER, model.segmentation_record["arch"], {}
    else:
        from imagefit.models.registry import create_backbone

        bb = create_backbone(
            opts.model, opts.weights, num_classes=n, image_size=opts.patch, in_chans=tileset.bands
        )
        model, data_config, extra = add_dense_skips(bb.model), bb.data_config, {"dense_skips": True}
        backbone, arch, weights = bb.spec.name, bb.spec.arch, bb.weights
    maps = {"patch": opts.patch, "key": tileset.key.to_json(), "train": list(train), "valid": valid[0]}
    maps["valid_refs"] = list(valid)
    maps["bands"] = list(opts.bands) if opts.bands else None
    options = {**asdict(opts), "roi": [list(p) for p in roi], "map": maps, **extra}
    config = RunConfig(
        backbone=backbone, arch=arch, weights=weights, classes=tileset.classes, data_config=data_config,
        strategy="map", seed=seed, data=str(tileset.root.resolve()), layout="tiles", options=options,
        model=model_record(model, arch),
    )  # fmt: skip
    return model, data_config, config


def _default_roi(tileset: TileSet, ref: str) -> Roi:
    tile = tileset.tile(ref)
    return ((0, 0), (min(VALID_ROI, tile.width), min(VALID_ROI, tile.height)))
