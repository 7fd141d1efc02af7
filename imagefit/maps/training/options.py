"""map-train's options: one dataclass, the single source of its defaults and checks."""

from __future__ import annotations

from dataclasses import dataclass

from imagefit.errors import ModelError, OptionError

# What an option left at None becomes, by the kind of model. Decoders: a pixel per target, crops a
# multiple of the encoder's stride (32), fewer steps (a crop is 65,536 targets): 4 epochs took about
# 20 minutes on 2 CPU cores, so 8 take about 40, within the hour a map run may take there; with
# --unlabelled an epoch cost about 1.7x (CPU time, one reduced tile-6 run), so UNLABELLED_EPOCHS.
# --budget fits the epochs to a time instead.
# Their lr on the tile-6 proxy (120 steps): 0.842 pixel accuracy, mIoU 0.514 (1e-3 with full class
# weights: 0.728, 0.387). A backbone's validation crops hold ~800,000 positions: their accuracy is a
# steady guide, while their loss grows with confidence in regions whose labels are ambiguous
# (measured: val_loss rose from epoch 2 of 8 while val_acc and the held-out maps kept improving), so
# backbones keep the best epoch by val_acc; decoders by the pooled mIoU of several held-out images
# (imagefit.maps.training.refs), the score their maps are judged by.
KIND_DEFAULTS: dict[str, dict[str, int | float | str]] = {
    "small CNNs": {
        "patch": 28, "epochs": 5, "steps": 200, "batch_size": 64, "lr": 1e-3, "monitor": "val_loss"
    },
    "backbones": {
        "patch": 32, "crop": 192, "epochs": 5, "steps": 200, "batch_size": 8, "lr": 5e-4, "monitor": "val_acc"
    },
    "decoders": {
        "patch": 1, "crop": 256, "epochs": 8, "steps": 100, "batch_size": 8, "lr": 3e-3, "monitor": "val_miou"
    },
}  # fmt: skip
# Block groups that train (below the classifier, or the decoder) when --stages is not given: backward
# through the early, high-resolution depthwise blocks is what makes CPU fine-tuning slow
TRAINED_BLOCKS = {"backbones": 4, "decoders": 5}  # decoders: blocks 2-6 of Lite0
UNLABELLED_EPOCHS = 5  # a decoder's default epochs with --unlabelled: about 45 minutes on 2 cores
MONITORS = ("val_loss", "val_acc", "val_miou")
SEMI_METHODS = ("fixmatch", "mean-teacher")  # imagefit.maps.training.unlabelled
VALID_ROI = 300  # side of the validation map region (from the tile's top-left corner) without --roi


@dataclass
class MapTrainOptions:
    """How a map-train run trains; saved in config.json."""

    model: str = "larger_model"  # a small-CNN preset/spec, a registry backbone, or unet|fpn|deeplabv3plus
    # None below: KIND_DEFAULTS' value for the kind of model
    patch: int | None = None  # 1 (a pixel) for decoders
    epochs: int | None = None
    steps: int | None = None  # batches per epoch
    batch_size: int | None = None  # patches (small CNNs) or crops (backbones and decoders)
    crop: int | None = None  # backbones and decoders: training crop side, at least the patch
    lr: float | None = None
    optimizer: str = "adamw"
    balance: bool = False
    augment: bool = True
    calibrate: bool = True  # fit a temperature on the validation tile's pixels after training
    ignore: int | str | None = None  # a label value, or a colour '#RRGGBB' with a colour key
    valid_patches: int = 2000  # small CNNs; backbones validate on valid_patches // 64 crops
    roi: tuple | None = None  # validation map region; None: the first VALID_ROI x VALID_ROI pixels
    weights: str = "auto"
    stages: str | None = None  # backbones and decoders: finetune stages; None: TRAINED_BLOCKS, all epochs
    monitor: str | None = None  # the best epoch by (KIND_DEFAULTS)
    dice: float = 1.0  # decoders: weight of the Dice loss beside the cross-entropy
    jitter: float = 0.0  # backbones and decoders: brightness/contrast/saturation jitter of crops
    budget: float | None = None  # minutes of training: the epochs fitted to them (TimeBudget); None: epochs
    budget_clock: str = "wall"  # or "cpu": CPU minutes over the threads, as on an idle machine (benchmarks)
    # decoders: unlabelled images of the area to map (files, folders, globs), learned from semi-supervised
    unlabelled: tuple[str, ...] | None = None
    semi: str = "fixmatch"  # how: fixmatch or mean-teacher
    pseudo_share: float = 0.5  # of each class's predicted pixels, the most confident share is pseudo-labelled
    unlabelled_weight: float = 1.0  # weight of the unlabelled loss after its ramp
    unlabelled_batch: int | None = None  # unlabelled crops per step; None: half the batch size
    # where the tiles come from besides the seeds' folder (imagefit.maps.inputs.tileset.TileSet takes these)
    images: str | None = None  # a folder of images, paired by name with...
    labels: str | None = None  # ...a folder of label rasters (values or colours)
    label_pattern: str | None = None  # how their names pair, IMAGE=LABEL (e.g. '*_sat=*_mask'); None: guessed
    pairs: str | None = None  # or a CSV of image,label paths
    vector: str | None = None  # or labels from a vector file's polygons...
    attribute: str | None = None  # ...by this attribute (class names or values of the key)
    key: str | None = None  # the key file; None: key-theme.txt beside the tiles
    bands: tuple[int, ...] | None = None  # 1-based image bands; None: all but alpha

    def __post_init__(self) -> None:
        self._fill_defaults()
        if self.epochs < 1 or self.steps < 1 or self.batch_size < 1 or self.valid_patches < 1:
            raise OptionError("epochs, steps, batch size and validation patches must be at least 1")
        if self.decoder:
            self._check_decoder()
        if self.monitor not in MONITORS:
            raise OptionError(f"--monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}")
        if self.crop is not None and self.crop < self.patch:
            raise OptionError(f"--crop {self.crop} must be at least the patch size {self.patch}")
        if not 0 <= self.jitter < 1:
            raise OptionError(f"--jitter must be in [0, 1), got {self.jitter}")
        if self.jitter and self.scratch:
            raise OptionError("--jitter applies to backbones and decoders (crops), not small CNNs")
        self._check_semi()
        if self.budget is not None and not self.budget > 0:
            raise OptionError(f"--budget must be a positive number of minutes, got {self.budget}")
        if self.budget_clock not in ("wall", "cpu"):
            raise OptionError(f"--budget-clock must be wall or cpu, got {self.budget_clock!r}")
        if self.bands is not None:
            self.bands = tuple(int(b) for b in self.bands)
            if not self.bands or min(self.bands) < 1:
                raise OptionError(f"--bands {self.bands}: bands are numbered from 1")

    def _check_semi(self) -> None:
        if isinstance(self.unlabelled, str):
            self.unlabelled = (self.unlabelled,)
        if self.unlabelled is not None:
            self.unlabelled = tuple(str(u) for u in self.unlabelled) or None
        if self.unlabelled and not self.decoder:
            raise OptionError("--unlabelled trains decoders (--model unet, fpn or deeplabv3plus)")
        if self.semi not in SEMI_METHODS:
            raise OptionError(f"--semi must be one of {', '.join(SEMI_METHODS)}, got {self.semi!r}")
        if not 0 < self.pseudo_share <= 1:
            raise OptionError(f"--pseudo-share must be in (0, 1], got {self.pseudo_share}")
        if not self.unlabelled_weight > 0:
            raise OptionError(f"--unlabelled-weight must be above 0, got {self.unlabelled_weight}")
        if self.unlabelled_batch is None:
            self.unlabelled_batch = max(1, self.batch_size // 2)
        if self.unlabelled_batch < 1:
            raise OptionError(f"--unlabelled-batch must be at least 1, got {self.unlabelled_batch}")
        if self.monitor == "val_miou" and self.scratch:
            raise OptionError("--monitor val_miou applies to backbones and decoders (crops), not small CNNs")

    def inputs(self) -> dict:
        """The TileSet arguments that say where images and labels come from."""
        names = ("images", "labels", "label_pattern", "pairs", "vector", "attribute", "key", "bands")
        return {name: getattr(self, name) for name in names}

    def _fill_defaults(self) -> None:
        """Options left at None take KIND_DEFAULTS' value for the kind of model."""
        defaults = KIND_DEFAULTS[self.kind]
        if self.unlabelled and self.decoder and self.epochs is None:
            self.epochs = UNLABELLED_EPOCHS
        if self.crop is None and "crop" in defaults:  # a crop holds at least one patch
            self.crop = max(defaults["crop"], self.patch if self.patch is not None else defaults["patch"])
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def _check_decoder(self) -> None:
        if self.patch != 1:
            raise OptionError(f"--patch does not apply to decoder {self.model} (it classifies every pixel)")
        if self.crop % 32:
            raise OptionError(f"--crop {self.crop}: a decoder's crops must be a multiple of 32 pixels")
        if self.dice < 0:
            raise OptionError(f"--dice must be at least 0, got {self.dice}")

    @property
    def kind(self) -> str:
        """The kind of model, as KIND_DEFAULTS names it: small CNNs, backbones or decoders."""
        if self.decoder:
            return "decoders"
        return "small CNNs" if self.scratch else "backbones"

    @property
    def decoder(self) -> bool:
        """Whether `model` is a segmentation decoder (unet, fpn, deeplabv3plus)."""
        from imagefit.models.segmentation import is_decoder

        return is_decoder(self.model)

    @property
    def scratch(self) -> bool:
        """Whether `model` is a small-CNN preset or spec (else a registry backbone)."""
        from imagefit.models.small_cnn import parse_spec

        try:
            parse_spec(self.model)
        except ModelError:
            return False
        return True
