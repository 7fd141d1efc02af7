"""map-train's options: one dataclass, the single source of its defaults and checks."""

from __future__ import annotations

from dataclasses import dataclass

from imagefit.errors import ModelError, OptionError

SCRATCH_PATCH, PRETRAINED_PATCH = 28, 32
PRETRAINED_CROP = 192
DECODER_CROP = 256  # decoders: a pixel per target, crops a multiple of the encoder's stride (32)
DECODER_EPOCHS, DECODER_STEPS = 4, 100  # about 20 minutes on 2 CPU cores
# tile-6 proxy (120 steps): 0.842 pixel accuracy, mIoU 0.514 (1e-3 with full class weights: 0.728, 0.387)
DECODER_LR = 3e-3
# A backbone's validation crops hold ~800,000 positions: their accuracy is a steady guide, while
# their loss grows with confidence in regions whose labels are ambiguous (measured: val_loss rose
# from epoch 2 of 8 while val_acc and the held-out maps kept improving).
MONITORS = ("val_loss", "val_acc")


@dataclass
class MapTrainOptions:
    """How a map-train run trains; saved in config.json."""

    model: str = "larger_model"  # a small-CNN preset/spec, a registry backbone, or unet|fpn|deeplabv3plus
    patch: int | None = None  # None: 28 for small CNNs, 32 for backbones, 1 (a pixel) for decoders
    epochs: int | None = None  # None: 5 (4 for decoders)
    steps: int | None = None  # batches per epoch; None: 200 (100 for decoders: a crop is 65,536 targets)
    batch_size: int | None = None  # None: 64 patches (small CNNs), 8 crops (backbones and decoders)
    crop: int | None = None  # backbones and decoders: training crop side; None: 192 (256 decoders)
    lr: float | None = None  # None: 1e-3 (scratch), 5e-4 (pretrained), 3e-3 (decoders)
    optimizer: str = "adamw"
    balance: bool = False
    augment: bool = True
    ignore: int | str | None = None  # a label value, or a colour '#RRGGBB' with a colour key
    valid_patches: int = 2000  # small CNNs; backbones validate on valid_patches // 64 crops
    roi: tuple | None = None  # validation map region; None: the first 300x300 pixels
    weights: str = "auto"
    stages: str | None = None  # backbones: finetune stages; None: the last 4 block groups, all epochs
    monitor: str | None = None  # the best epoch by: None: val_loss (small CNNs), val_acc (backbones)
    dice: float = 1.0  # decoders: weight of the Dice loss beside the cross-entropy
    jitter: float = 0.0  # backbones and decoders: brightness/contrast/saturation jitter of crops
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
        if self.epochs is None:
            self.epochs = DECODER_EPOCHS if self.decoder else 5
        if self.steps is None:
            self.steps = DECODER_STEPS if self.decoder else 200
        if self.batch_size is None:
            self.batch_size = 64 if self.scratch else 8
        if self.epochs < 1 or self.steps < 1 or self.batch_size < 1 or self.valid_patches < 1:
            raise OptionError("epochs, steps, batch size and validation patches must be at least 1")
        if self.decoder:
            self._check_decoder()
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
            self.lr = DECODER_LR if self.decoder else (1e-3 if self.scratch else 5e-4)
        if not 0 <= self.jitter < 1:
            raise OptionError(f"--jitter must be in [0, 1), got {self.jitter}")
        if self.jitter and self.scratch:
            raise OptionError("--jitter applies to backbones and decoders (crops), not small CNNs")
        if self.bands is not None:
            self.bands = tuple(int(b) for b in self.bands)
            if not self.bands or min(self.bands) < 1:
                raise OptionError(f"--bands {self.bands}: bands are numbered from 1")

    def inputs(self) -> dict:
        """The TileSet arguments that say where images and labels come from."""
        names = ("images", "labels", "label_pattern", "pairs", "vector", "attribute", "key", "bands")
        return {name: getattr(self, name) for name in names}

    def _check_decoder(self) -> None:
        if self.patch not in (None, 1):
            raise OptionError(f"--patch does not apply to decoder {self.model} (it classifies every pixel)")
        self.patch = 1
        self.crop = DECODER_CROP if self.crop is None else self.crop
        if self.crop % 32:
            raise OptionError(f"--crop {self.crop}: a decoder's crops must be a multiple of 32 pixels")
        if self.dice < 0:
            raise OptionError(f"--dice must be at least 0, got {self.dice}")

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
