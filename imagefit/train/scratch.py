"""The scratch strategy: a small CNN from a compact spec, trained from random weights on class folders.

The run folder gets config.json at the start (so that `resume_scratch` can continue it) and
model.safetensors (the best epoch by validation loss) and metrics.json at the end, as
`imagefit.runs` writes them; history.csv and checkpoints/ are kept up to date after every epoch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timm.data import resolve_model_data_config
from torch.utils.data import DataLoader

from imagefit._atomic import write_json
from imagefit.data.augment import parse_augment, train_transform
from imagefit.data.channels import detect_channels
from imagefit.data.folders import Dataset, Sample, discover_dataset
from imagefit.data.loader import ImageFiles, collate, default_workers
from imagefit.data.scan import report_dataset
from imagefit.data.transforms import decode_size, eval_transform
from imagefit.errors import DataError, ModelError, OptionError
from imagefit.evaluate.training_report import training_report
from imagefit.inference.classifier import Classifier, Predictions
from imagefit.models.small_cnn import SmallCNN, min_input_size, parse_spec
from imagefit.runs import CONFIG, RunConfig, new_run_dir, read_config, save_run
from imagefit.train import distributed
from imagefit.train.callbacks import (
    Checkpoint,
    EarlyStopping,
    HistoryCSV,
    NaNGuard,
    ProgressBar,
    load_weights,
)
from imagefit.train.callbacks.checkpoint import BEST
from imagefit.train.class_weights import check_class_weights, training_loss
from imagefit.train.distributed import distributed_loader
from imagefit.train.loop import Trainer, seed_everything
from imagefit.train.mixing import MixedBatches, check_mixing
from imagefit.train.optim import OptimSpec

log = logging.getLogger(__name__)

AUTO_SIZE_CAP = 128  # an automatic input size never exceeds this: scratch CNNs are for small images
CHECKPOINTS = "checkpoints"


class Batches:
    """(images, labels) batches of some samples; unreadable files are skipped and listed in `skipped`."""

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable,
        data_config: dict,
        skipped: dict[Path, str] | None = None,  # shared with other batches of the same files
        **loader_options,
    ):
        self.samples = list(samples)
        self.labels = torch.tensor([s.label for s in self.samples], dtype=torch.long)
        self.files = ImageFiles([s.path for s in self.samples], transform, min_size=decode_size(data_config))
        self.options = {"pin_memory": torch.cuda.is_available(), **loader_options}
        self.loader = DataLoader(self.files, collate_fn=collate, **self.options)
        self.skipped = {} if skipped is None else skipped
        self.sharded = False

    def distribute(self, shard: bool = True) -> None:
        """Give each rank of a distributed run its share, in batches that add up to the batch size.

        `shard=False` gives every image back to every rank (evaluation after training).
        """
        self.sharded = shard
        if shard:
            self.loader = distributed_loader(self.files, collate, self.options)
        else:
            self.loader = DataLoader(self.files, collate_fn=collate, **self.options)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle a distributed shard for `epoch` (ranks agree on the order)."""
        if hasattr(self.loader.sampler, "set_epoch"):
            self.loader.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            for i, reason in batch.errors:
                if self.samples[i].path not in self.skipped:
                    log.warning("skipped %s", reason)
                    self.skipped[self.samples[i].path] = reason
            if batch.images is not None:
                yield batch.images, self.labels[batch.indices]


@dataclass
class ScratchOptions:
    """How a scratch run trains; saved in config.json and checked when made, before any data is read."""

    arch: str = "larger_model"
    epochs: int = 10
    batch_size: int | None = None  # None: 32, or the training set's size when smaller
    lr: float = 1e-3
    optimizer: str = "adam"
    schedule: str = "onecycle"
    warmup: float | None = None
    weight_decay: float = 0.0
    momentum: float = 0.9
    image_size: int | None = None  # None: the most common shorter side of the images, at most 128
    channels: int | None = None  # None: 1 when the images are stored as grayscale, else 3
    augment: bool | str = False  # True: mild crops, flips, jitter; or an --aug spec (data/augment.py)
    valid_pct: float = 0.2
    patience: int | None = None  # early stopping on val_loss; None: off
    class_weights: str | None = None  # auto: classes weighted n / (k * n_c) in the training loss
    mixup: float = 0.0  # Beta(alpha, alpha) blends of image pairs; 0: off
    label_smoothing: float = 0.0  # share of each target spread over the classes

    def __post_init__(self) -> None:
        self.optim()
        parse_spec(self.arch)
        parse_augment(self.augment)
        self.class_weights = check_class_weights(self.class_weights)
        check_mixing(self.mixup, self.label_smoothing)
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise OptionError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.channels not in (None, 1, 3):
            raise OptionError(f"--channels must be 1 (grayscale) or 3 (colour), got {self.channels}")
        if self.patience is not None and self.patience < 1:
            raise OptionError(f"--patience must be at least 1, got {self.patience}")

    def optim(self) -> OptimSpec:
        return OptimSpec(
            self.optimizer, self.lr, self.weight_decay, self.momentum, self.schedule, self.warmup
        )


def train_scratch(
    data: str | Path,
    arch: str = "larger_model",
    out: str | Path | None = None,
    epochs: int = 10,
    batch_size: int | None = None,
    lr: float = 1e-3,
    optimizer: str = "adam",
    seed: int = 0,
    image_size: int | None = None,
    channels: int | None = None,
    augment: bool = False,
    progress: bool = True,
    **more,
):
    """Train the small CNN `arch` (a preset or a spec) from scratch on `data`; returns a TrainResult.

    `more` takes the other ScratchOptions fields (schedule, warmup, weight_decay, momentum,
    valid_pct, patience) and run_scratch's (workers, device, callbacks).
    """
    fields = {k: more.pop(k) for k in list(more) if k in ScratchOptions.__dataclass_fields__}
    options = ScratchOptions(
        arch,
        epochs,
        batch_size,
        lr,
        optimizer,
        image_size=image_size,
        channels=channels,
        augment=augment,
        **fields,
    )
    return run_scratch(data, options, out=out, seed=seed, progress=progress, **more)


def resume_scratch(run_dir: str | Path, progress: bool = True, **run_options):
    """Continue a scratch run from its last checkpoint, with the options it was started with."""
    config = read_config(run_dir)
    if config.strategy != "scratch":
        raise ModelError(f"{run_dir} is a {config.strategy} run: only scratch runs can be resumed")
    known = ScratchOptions.__dataclass_fields__
    options = ScratchOptions(**{k: v for k, v in config.options.items() if k in known})
    return run_scratch(
        config.data, options, run_dir, config.seed, progress=progress, resume=True, **run_options
    )


def run_scratch(
    data: str | Path,
    options: ScratchOptions,
    out: str | Path | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    device: str | None = None,
    callbacks: Sequence = (),
    resume: bool = False,
):
    """Train as `options` say and write the run folder; `resume` continues the run in `out`."""
    from imagefit.train.api import TrainResult  # imported here: api dispatches to this module

    started = time.perf_counter()
    dataset = discover_dataset(data, options.valid_pct, seed)
    report_dataset(dataset)  # per-class counts, files to skip, imbalance, train/valid leakage
    options.batch_size = resolve_batch_size(options.batch_size, len(dataset.train))
    model, config = _model_and_config(data, dataset, options, seed)
    run_dir = _run_dir(out, resume)
    if not resume:
        write_json(run_dir / CONFIG, asdict(config))
    loader = {"batch_size": options.batch_size, **_loader_options(workers, len(dataset.train), options)}
    train, valid = _batches(dataset, config.data_config, options, loader)
    if options.mixup > 0:
        train = MixedBatches(train, len(dataset.classes), options.mixup, seed)
    extra = _callbacks(run_dir, options.patience, progress, callbacks)
    labels = [s.label for s in dataset.train]
    trainer = Trainer(
        model,
        train,
        valid,
        optim=options.optim(),
        epochs=options.epochs,
        loss=training_loss(options.class_weights, labels, len(dataset.classes), options.label_smoothing),
        eval_loss=torch.nn.CrossEntropyLoss(),
        callbacks=extra,
        device=device,
        seed=seed,
    )
    if resume:
        trainer.resume(run_dir / CHECKPOINTS)
    trainer.fit()
    if not distributed.is_main():
        return TrainResult(run_dir, {}, None)  # rank 0 evaluates and writes the run
    if trainer.epoch == 0:
        raise OptionError(trainer.stop_reason or "training stopped before the first epoch ended")
    classifier, metrics = _finish(trainer, dataset, config, run_dir, loader, (train, valid))
    metrics["seconds"] = {"total": round(time.perf_counter() - started, 3)}
    save_run(run_dir, classifier, config, metrics)
    training_report(
        run_dir, classifier, dataset, engine="torch", cache=False, workers=workers, progress=progress
    )
    return TrainResult(run_dir, metrics, classifier)


def _finish(
    trainer: Trainer, dataset: Dataset, config: RunConfig, run_dir: Path, loader: dict, used: tuple
) -> tuple[Classifier, dict]:
    """The best epoch's model as a classifier, its metrics, and predictions for test/ if there is one."""
    model = trainer.model
    best = load_weights(run_dir / CHECKPOINTS / BEST, model)
    metrics = _metrics(trainer, dataset, config.data_config, loader, used, best)
    model.cpu().eval()
    if dataset.test:
        preds = _predict_test(model, dataset.classes, dataset.test, config.data_config, loader)
        preds.to_csv(run_dir / "test_predictions.csv")
    info = {"backbone": config.backbone, "arch": config.arch, "weights": "none", "run": str(run_dir)}
    return Classifier(model, dataset.classes, config.data_config, info), metrics


def _model_and_config(
    data: str | Path, dataset: Dataset, options: ScratchOptions, seed: int
) -> tuple[SmallCNN, RunConfig]:
    """The untrained model (seeded) and the run's config, with channels and size resolved."""
    channels = options.channels or detect_channels([s.path for s in dataset.train])
    size = options.image_size or auto_image_size(dataset.train, options.arch)
    seed_everything(seed)  # the same seed starts from the same weights
    model = SmallCNN(options.arch, channels, len(dataset.classes), size)
    resolved = {**asdict(options), "image_size": size, "channels": channels}
    config = RunConfig(
        backbone=model.arch,
        arch=model.spec,
        weights="none",
        classes=dataset.classes,
        data_config=dict(resolve_model_data_config(model)),
        strategy="scratch",
        seed=seed,
        data=str(Path(data).resolve()),
        layout=dataset.layout,
        options={**resolved, "small_cnn": model.describe()},
    )
    return model, config


def _batches(dataset: Dataset, data_config: dict, options: ScratchOptions, loader: dict) -> tuple:
    n = len(dataset.train)
    single_last = n > 1 and n % options.batch_size == 1  # BatchNorm cannot train on one image
    augmented = train_transform(data_config, options.augment)
    train = Batches(dataset.train, augmented, data_config, shuffle=True, drop_last=single_last, **loader)
    valid = Batches(dataset.valid, eval_transform(data_config), data_config, **loader)
    return train, valid


DEFAULT_BATCH = 32


def resolve_batch_size(batch_size: int | None, n_train: int) -> int:
    """The batch size to train with; one asked for that exceeds the training set is an error."""
    if batch_size is None:
        return max(1, min(DEFAULT_BATCH, n_train))
    if batch_size > n_train:
        raise OptionError(f"--batch-size {batch_size} is larger than the {n_train} training images: lower it")
    return batch_size


def auto_image_size(samples: Sequence[Sample], arch: str, sample: int = 64) -> int:
    """The most common shorter side among the first images, capped at 128, at least what `arch` needs."""
    sides = Counter()
    for s in list(samples)[:sample]:
        try:
            with Image.open(s.path) as img:
                sides[min(img.size)] += 1
        except (OSError, ValueError):
            continue
    if not sides:
        raise DataError("no readable training images to take an image size from: check the files")
    side = min(sides.most_common(1)[0][0], AUTO_SIZE_CAP)
    size = max(side, min_input_size(parse_spec(arch)))
    log.info("image size %d x %d (set --image-size to change it)", size, size)
    return size


def _run_dir(out: str | Path | None, resume: bool) -> Path:
    if out is None:
        if resume:
            raise OptionError("resuming needs the run folder to continue")
        return new_run_dir(prefix="scratch")
    run_dir = Path(out)
    last = run_dir / CHECKPOINTS / "last.safetensors"
    if resume and not last.is_file():
        raise ModelError(f"{run_dir} has no {last.relative_to(run_dir)}: there is nothing to resume")
    if not resume and last.is_file():
        raise OptionError(f"{run_dir} already holds a training run: resume it or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _callbacks(run_dir: Path, patience: int | None, progress: bool, extra: Sequence) -> list:
    callbacks = [NaNGuard(), HistoryCSV(run_dir / "history.csv"), Checkpoint(run_dir / CHECKPOINTS)]
    if patience is not None:
        callbacks.append(EarlyStopping("val_loss", patience=patience))
    callbacks.append(ProgressBar(disable=not progress))
    return [*callbacks, *extra]


def _loader_options(workers: int | None, n_images: int, options: ScratchOptions) -> dict:
    workers = default_workers() if workers is None else workers
    if workers == 0 or n_images <= options.batch_size:
        return {"num_workers": 0}
    return {"num_workers": workers, "persistent_workers": True, "prefetch_factor": 4}


def _metrics(
    trainer: Trainer, dataset: Dataset, data_config: dict, loader: dict, used: tuple, best: dict
) -> dict:
    """Loss and accuracy of the best model on train (without augmentation) and valid."""
    train, valid = used
    plain = eval_transform(data_config)
    plain_train = Batches(dataset.train, plain, data_config, skipped=train.skipped, **loader)
    scores = {}
    for split, batches in (("train", plain_train), ("valid", valid)):
        s = trainer.evaluate(batches)
        scores[split] = {"n": s["n"], "loss": s["loss"], "accuracy": s["acc"]} if s["n"] else {"n": 0}
    skipped = {**train.skipped, **valid.skipped}
    return {
        **scores,
        "best": best,
        "epochs": trainer.epoch,
        "stopped": trainer.stop_reason,
        "skipped": [{"path": str(p), "reason": r} for p, r in skipped.items()],
    }


def _predict_test(
    model: SmallCNN, classes: list[str], samples: Sequence[Sample], data_config: dict, loader: dict
) -> Predictions:
    """Class probabilities for the unlabelled test/ images."""
    files = ImageFiles([s.path for s in samples], eval_transform(data_config), decode_size(data_config))
    probs, kept, errors = [], [], []
    with torch.inference_mode():
        for batch in DataLoader(files, collate_fn=collate, **loader):
            errors.extend((samples[i].path, reason) for i, reason in batch.errors)
            if batch.images is not None:
                probs.append(model(batch.images).softmax(-1).numpy())
                kept.extend(samples[i].path for i in batch.indices.tolist())
    table = np.concatenate(probs) if probs else np.zeros((0, len(classes)), np.float32)
    return Predictions(classes, kept, table, errors)
