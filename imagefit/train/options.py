"""Each strategy's options: one dataclass per strategy, the single source of defaults and checks.

The command line builds the chosen strategy's dataclass from the options given on it, and so does
`imagefit.train(**options)`; an option that the strategy does not take is an error naming the
strategies that do. This module imports nothing heavy, so `--help` can show these defaults.
Checks that need the training code (architectures, schedules, augmentation specs) import it then.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from imagefit.errors import OptionError
from imagefit.models.defaults import DEFAULT_BACKBONE

if TYPE_CHECKING:
    from imagefit.train.engine.optim import OptimSpec
    from imagefit.train.engine.stages import Stage

DEFAULT_BATCH = 32  # images per batch when --batch-size is not given (at most the training images)
DEFAULT_STAGES = "head:1:2e-3,top2:2:1e-4,top4:2:5e-5"
HEAD_INITS = ("linear", "random")
CLASS_WEIGHTS = ("none", "auto")
TASKS = ("auto", "single", "multilabel")


@dataclass
class TrainOptions:
    """What every strategy takes."""

    valid_pct: float = 0.2  # share held out for validation when the data has no valid split
    batch_size: int | None = None  # None: DEFAULT_BATCH, or the training set's size when smaller
    image_size: int | None = None  # None: the backbone's (scratch: from the images)
    class_weights: str | None = None  # auto: classes weighted n / (k * n_c) in training
    exclude: str | None = None  # a file listing images to leave out (paths, or a CSV such as audit.csv)
    images: str | None = None  # a table's image names start here; None: the table's folder
    valid: str | None = None  # a second table of validation rows, when the first has no split column
    path_col: str | None = None  # the table's column of image names; None: guessed
    label_col: str | None = None  # the table's column of labels; None: guessed (or one-hot columns)
    label_delim: str | None = None  # separator of several labels in a cell; none: one label; None: guessed
    task: str = "auto"  # auto: multi-label when an image has several labels; single; multilabel
    calibrate: bool = True  # fit a temperature (multi-label: per-label scaling) on the validation images
    unknown_recall: float = 0.95  # share of validation images kept known by the familiarity threshold

    def __post_init__(self) -> None:
        for name in ("images", "valid", "exclude"):
            if getattr(self, name) is not None:
                setattr(self, name, str(getattr(self, name)))
        if self.task not in TASKS:
            raise OptionError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        self.class_weights = "none" if self.class_weights is None else str(self.class_weights).lower()
        if self.class_weights not in CLASS_WEIGHTS:
            raise OptionError(
                f"--class-weights must be one of {', '.join(CLASS_WEIGHTS)}, got {self.class_weights!r}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not 0.5 <= self.unknown_recall < 1:
            raise OptionError(f"--unknown-recall must be at least 0.5 and below 1, got {self.unknown_recall}")
        if self.image_size is not None and self.image_size < 8:
            raise OptionError(f"--image-size must be at least 8, got {self.image_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    def data_options(self) -> dict:
        """How the data is read: the table options, the task, the validation share."""
        names = ("images", "valid", "path_col", "label_col", "label_delim", "task", "valid_pct")
        return {name: getattr(self, name) for name in names}


@dataclass
class LinearOptions(TrainOptions):
    """The linear strategy: a logistic-regression head on cached backbone features."""

    model: str = DEFAULT_BACKBONE
    weights: str = "auto"  # auto (bundled or cached), hub, none, or a file
    engine: str = "auto"
    cache: bool = True


@dataclass
class EpochOptions(TrainOptions):
    """What the strategies that train for epochs share (scratch, finetune)."""

    optimizer: str = "adam"
    schedule: str = "onecycle"
    warmup: float | None = None  # share of each stage's steps; None: the schedule's default
    weight_decay: float = 0.0
    momentum: float = 0.9
    augment: bool | str = False  # True: mild crops, flips, jitter; or an --aug spec
    patience: int | None = None  # early stopping on val_loss; None: off
    mixup: float = 0.0  # Beta(alpha, alpha) blends of image pairs; 0: off
    label_smoothing: float = 0.0  # share of each target spread over the classes

    def __post_init__(self) -> None:
        super().__post_init__()
        from imagefit.data.augment import parse_augment
        from imagefit.train.engine.mixing import check_mixing

        self.optimizer = self.optimizer.lower()
        self.optim()  # checks the optimiser, weight decay, momentum, schedule and warm-up
        parse_augment(self.augment)
        check_mixing(self.mixup, self.label_smoothing)
        if self.patience is not None and self.patience < 1:
            raise OptionError(f"--patience must be at least 1, got {self.patience}")

    def optim(self) -> OptimSpec:
        """The optimiser and schedule (an OptimSpec); the learning rates come with the stages."""
        from imagefit.train.engine.optim import OptimSpec

        return OptimSpec(self.optimizer, None, self.weight_decay, self.momentum, self.schedule, self.warmup)

    def stage_plan(self) -> list[Stage]:
        """The stages to train (`Stage`s), each with its epochs and learning rate."""
        raise NotImplementedError


@dataclass
class ScratchOptions(EpochOptions):
    """The scratch strategy: a small CNN from a compact spec, trained from random weights."""

    arch: str = "larger_model"
    epochs: int = 10
    lr: float = 1e-3
    channels: int | None = None  # None: 1 when the images are stored as grayscale, else 3

    def __post_init__(self) -> None:
        super().__post_init__()
        from imagefit.models.small_cnn import parse_spec
        from imagefit.train.engine.optim import check_lr

        parse_spec(self.arch)
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise OptionError(f"--epochs must be at least 1, got {self.epochs}")
        check_lr(self.lr)
        if self.channels is not None:
            self.channels = int(self.channels)
        if self.channels not in (None, 1, 3):
            raise OptionError(f"--channels must be 1 (grayscale) or 3 (colour), got {self.channels}")

    def stage_plan(self) -> list[Stage]:
        """One stage of every parameter for `epochs` at `lr`."""
        from imagefit.train.engine.stages import Stage

        return [Stage("train", self.epochs, self.lr)]


@dataclass
class FinetuneOptions(EpochOptions):
    """The finetune strategy: a new head on a pretrained backbone, later blocks unfrozen in stages."""

    model: str = DEFAULT_BACKBONE
    weights: str = "auto"
    engine: str = "auto"  # extracts the probe's features and predicts after training
    stages: str = DEFAULT_STAGES  # head|topN|all:EPOCHS:LR, each stage at its own rate
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    augment: bool | str = True
    frozen_norms: bool = True  # BatchNorm statistics stay the pretrained ones in every stage
    head_init: str = "linear"  # linear: the head starts as the linear strategy's fit (LP-FT); random
    wise: float = 0.5  # saved weights: this share fine-tuned, the rest the linear probe's (WiSE-FT)

    def __post_init__(self) -> None:
        if self.head_init not in HEAD_INITS:
            raise OptionError(f"--head-init must be one of {', '.join(HEAD_INITS)}, got {self.head_init!r}")
        if not 0 < self.wise <= 1:
            raise OptionError(
                f"--wise is the fine-tuned share of the saved weights, in (0, 1], got {self.wise}"
            )
        if self.batch_size is not None and self.batch_size < 2:
            raise OptionError(f"--batch-size must be at least 2 to fine-tune, got {self.batch_size}")
        super().__post_init__()
        self.stage_plan()  # checks the spec: each stage's kind, epochs and learning rate

    def stage_plan(self) -> list[Stage]:
        """The stages of `stages`, each unfreezing the top block groups of the model it trains."""
        from imagefit.train.engine.stages import parse_stages

        return parse_stages(self.stages)


STRATEGY_OPTIONS: dict[str, type[TrainOptions]] = {
    "linear": LinearOptions,
    "finetune": FinetuneOptions,
    "scratch": ScratchOptions,
}


def option_names(kind: type) -> set[str]:
    return {f.name for f in fields(kind)}


def make_options(strategy: str, given: dict, table: dict[str, type] = STRATEGY_OPTIONS):
    """The options of `strategy` from the values given; one it does not take is an OptionError."""
    if strategy not in table:
        raise OptionError(f"unknown strategy {strategy!r}: choose one of {', '.join(table)}")
    kind = table[strategy]
    for name in given:
        if name not in option_names(kind):
            takers = [s for s, k in table.items() if name in option_names(k)]
            flag = "--" + name.replace("_", "-")
            where = f"only {', '.join(takers)} take(s) it" if takers else "no strategy takes it"
            raise OptionError(f"{flag} is not an option of the {strategy} strategy: {where}")
    return kind(**given)


def restore_options(kind: type, saved: dict):
    """Options as a run's config.json saved them (fields added later take their defaults)."""
    return kind(**{k: v for k, v in saved.items() if k in option_names(kind)})
