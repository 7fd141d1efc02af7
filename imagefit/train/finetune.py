"""The finetune strategy: a new head on a pretrained backbone, then later blocks unfrozen in stages.

The head starts as the linear strategy's fit on cached features (`head_init='linear'`, LP-FT), so
the backbone is never trained under a random head.

Stages come from a compact spec, `head:1:2e-3,top2:2:1e-4,top4:2:5e-5`: train the head alone for
one epoch at 2e-3, then the last two block groups with the head for two epochs at 1e-4, then the
last four at 5e-5. BatchNorm layers stay in inference mode throughout (`frozen_norms`), as Keras
advises for fine-tuning on small datasets: their scale and shift train, their statistics do not.
Block groups are timm's coarse parameter groups (stem, blocks, head conv, classifier),
so the spec works for any timm architecture. Within a stage, rates fall geometrically from the
stage's rate at the classifier to a tenth of it at the lowest unfrozen group (discriminative rates).
Training runs at the backbone's training resolution; validation, the final metrics and the saved
run use its inference preprocessing, as predictions will.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from timm.models import group_parameters
from torch import nn

from imagefit._atomic import write_json
from imagefit.data.augment import parse_augment, train_transform
from imagefit.data.folders import discover_dataset
from imagefit.data.scan import report_dataset
from imagefit.data.transforms import eval_transform
from imagefit.errors import DataError, OptionError
from imagefit.evaluate.training_report import training_report
from imagefit.features.extract import FeatureExtractor
from imagefit.inference.classifier import Classifier
from imagefit.models.registry import DEFAULT_BACKBONE, create_backbone, get_spec
from imagefit.runs import CONFIG, backbone_config, read_config, save_run
from imagefit.train import distributed
from imagefit.train._state import load_state, save_state
from imagefit.train.callbacks.checkpoint import BEST, load_weights
from imagefit.train.callbacks.frozen_norms import FrozenBatchNorm
from imagefit.train.class_weights import check_class_weights, training_loss
from imagefit.train.linear import fit_linear_head, load_head
from imagefit.train.loop import Trainer, seed_everything
from imagefit.train.mixing import MixedBatches, check_mixing
from imagefit.train.optim import OptimSpec
from imagefit.train.scratch import (
    CHECKPOINTS,
    Batches,
    _callbacks,
    _loader_options,
    _run_dir,
    resolve_batch_size,
)
from imagefit.train.stages import Stage

log = logging.getLogger(__name__)

DEFAULT_STAGES = "head:1:2e-3,top2:2:1e-4,top4:2:5e-5"
PROBE = "probe.safetensors"  # the linear-probe weights fine-tuning started from (for WiSE-FT)
HEAD_INITS = ("linear", "random")
_STAGE = re.compile(r"^(head|top(\d+)|all):(\d+):([0-9.eE+-]+)$")


@dataclass
class FinetuneOptions:
    """How a finetune run trains; saved in config.json, checked before any data is read."""

    stages: str = DEFAULT_STAGES
    batch_size: int | None = None  # None: 32, or the training set's size when smaller
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    warmup: float | None = None
    weight_decay: float = 0.01
    momentum: float = 0.9
    augment: bool | str = True  # True: mild crops, flips, jitter; or an --aug spec (data/augment.py)
    frozen_norms: bool = True  # BatchNorm statistics stay the pretrained ones in every stage
    valid_pct: float = 0.2
    patience: int | None = None
    head_init: str = "linear"  # linear: the head starts as the linear strategy's fit (LP-FT); random
    class_weights: str | None = None  # auto: classes weighted n / (k * n_c) in the training loss
    wise: float = 0.5  # saved weights: this share fine-tuned, the rest the linear probe's (WiSE-FT)
    mixup: float = 0.0  # Beta(alpha, alpha) blends of image pairs; 0: off
    label_smoothing: float = 0.0  # share of each target spread over the classes

    def __post_init__(self) -> None:
        self.optim()
        parse_augment(self.augment)
        self.class_weights = check_class_weights(self.class_weights)
        check_mixing(self.mixup, self.label_smoothing)
        if self.head_init not in HEAD_INITS:
            raise OptionError(f"--head-init must be one of {', '.join(HEAD_INITS)}, got {self.head_init!r}")
        if not 0 < self.wise <= 1:
            raise OptionError(
                f"--wise is the fine-tuned share of the saved weights, in (0, 1], got {self.wise}"
            )
        if self.batch_size is not None and self.batch_size < 2:
            raise OptionError(f"--batch-size must be at least 2 to fine-tune, got {self.batch_size}")

    def optim(self) -> OptimSpec:
        """The optimiser; each stage brings its own learning rate."""
        lr = max(stage.lr for stage in parse_stages(self.stages, n_groups=99))
        return OptimSpec(self.optimizer, lr, self.weight_decay, self.momentum, self.schedule, self.warmup)


def parse_stages(spec: str, n_groups: int, groups: list[list[str]] | None = None) -> list[Stage]:
    """Stages from a spec; with `groups` (parameter names per coarse group), trainable pickers too."""
    stages = []
    for token in [t.strip() for t in spec.split(",") if t.strip()]:
        m = _STAGE.match(token)
        if not m:
            raise OptionError(
                f"bad stage {token!r} in --stages: write head|topN|all:EPOCHS:LR, e.g. {DEFAULT_STAGES}"
            )
        kind, top, epochs, lr = m.group(1), m.group(2), int(m.group(3)), float(m.group(4))
        depth = 0 if kind == "head" else (n_groups - 1 if kind == "all" else int(top))
        if depth > n_groups - 1:
            raise OptionError(
                f"stage {token!r} unfreezes {depth} block groups but the model has {n_groups - 1}"
            )
        stages.append(Stage(token, epochs, lr, _picker(groups, depth) if groups else None))
    if not stages:
        raise OptionError("--stages is empty: give at least one stage, e.g. head:1:2e-3")
    return stages


def _picker(groups: list[list[str]], depth: int):
    """Trainable groups: the classifier at the stage rate, `depth` groups below at falling rates."""
    chosen = groups[len(groups) - 1 - depth :]

    def pick(model) -> list[dict]:
        params = dict(model.named_parameters())
        out = []
        for i, names in enumerate(chosen):
            scale = 0.1 ** ((len(chosen) - 1 - i) / max(1, len(chosen) - 1)) if len(chosen) > 1 else 1.0
            out.append({"params": [params[n] for n in names], "lr_scale": scale})
        return out

    return pick


def coarse_groups(model) -> list[list[str]]:
    """timm's coarse parameter groups in network order, the classifier last and alone."""
    grouped = group_parameters(model, model.group_matcher(coarse=True))
    groups = [list(names) for _, names in sorted(grouped.items())]
    head = {n for n, _ in model.get_classifier().named_parameters(prefix=_classifier_name(model))}
    body = [[n for n in g if n not in head] for g in groups]
    return [g for g in body if g] + [sorted(head)]


def _classifier_name(model) -> str:
    return next(name for name, module in model.named_modules() if module is model.get_classifier())


def train_finetune(
    data: str | Path,
    model: str = DEFAULT_BACKBONE,
    weights: str | Path = "auto",
    out: str | Path | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    image_size: int | None = None,
    callbacks=(),
    **options,
):
    """Fine-tune `model` on `data` stage by stage and write a run folder; returns a TrainResult."""
    opts = FinetuneOptions(**options)
    get_spec(model)
    dataset = discover_dataset(data, opts.valid_pct, seed)
    report_dataset(dataset)  # per-class counts, files to skip, imbalance, train/valid leakage
    opts.batch_size = resolve_batch_size(opts.batch_size, len(dataset.train))
    seed_everything(seed)
    backbone = create_backbone(model, weights, num_classes=len(dataset.classes), image_size=image_size)
    if opts.head_init == "linear":
        _probe_head(backbone, dataset, opts.batch_size, workers, progress, seed)
    saved = {**asdict(opts), "image_size": image_size, "train_data_config": backbone.train_data_config}
    config = backbone_config(backbone, dataset, "finetune", seed, data, saved)
    run_dir = _run_dir(out, resume=False)
    write_json(run_dir / CONFIG, asdict(config))
    if opts.head_init == "linear" and opts.wise < 1 and distributed.is_main():
        save_state(run_dir / CHECKPOINTS / PROBE, {"model": backbone.model.state_dict()})  # for WiSE-FT
    return _fit(backbone, dataset, opts, config, run_dir, workers, progress, callbacks, resume=False)


def resume_finetune(run_dir: str | Path, workers: int | None = None, progress: bool = True, callbacks=()):
    """Continue a finetune run from its last checkpoint: same stages, same history, same options."""
    config = read_config(run_dir)
    opts = FinetuneOptions(
        **{k: v for k, v in config.options.items() if k in FinetuneOptions.__dataclass_fields__}
    )
    dataset = discover_dataset(config.data, opts.valid_pct, config.seed)
    if dataset.classes != config.classes:
        raise DataError(
            f"{config.data} now has classes {', '.join(dataset.classes)}, the run was started with "
            f"{', '.join(config.classes)}: a changed dataset cannot be resumed"
        )
    # the weights come from the checkpoint: build the architecture only
    backbone = create_backbone(config.backbone, "none", len(config.classes), config.options.get("image_size"))
    backbone.weights = config.weights
    run_dir = _run_dir(run_dir, resume=True)
    return _fit(backbone, dataset, opts, config, run_dir, workers, progress, callbacks, resume=True)


def _fit(
    backbone, dataset, opts: FinetuneOptions, config, run_dir: Path, workers, progress, callbacks, resume
):
    """Train the stages (from the last checkpoint when resuming), keep the best epoch, save the run."""
    from imagefit.train.api import TrainResult, _scores  # api dispatches here

    started = time.perf_counter()
    groups = coarse_groups(backbone.model)
    stages = parse_stages(opts.stages, len(groups), groups)
    train, valid = _batches(dataset, backbone, opts, workers)
    if opts.mixup > 0:
        train = MixedBatches(train, len(dataset.classes), opts.mixup, config.seed)
    norms = [FrozenBatchNorm()] if opts.frozen_norms else []
    trainer = Trainer(
        backbone.model,
        train,
        valid,
        optim=opts.optim(),
        stages=stages,
        seed=config.seed,
        loss=training_loss(
            opts.class_weights, [s.label for s in dataset.train], len(dataset.classes), opts.label_smoothing
        ),
        eval_loss=nn.CrossEntropyLoss(),
        callbacks=[*norms, *_callbacks(run_dir, opts.patience, progress, callbacks)],
    )
    if resume:
        trainer.resume(run_dir / CHECKPOINTS)
    trainer.fit()
    if not distributed.is_main():
        return TrainResult(run_dir, {}, None)  # rank 0 evaluates and writes the run
    if trainer.epoch == 0:
        raise OptionError(trainer.stop_reason or "training stopped before the first epoch ended")
    best = load_weights(run_dir / CHECKPOINTS / BEST, backbone.model)
    model_ = backbone.model.cpu().eval()
    info = {"backbone": backbone.spec.name, "arch": backbone.spec.arch, "weights": backbone.weights}
    classifier = Classifier(model_, dataset.classes, backbone.data_config, info)
    blended = _wise(classifier, run_dir, opts, dataset, workers, progress, _scores)
    metrics = _final_metrics(classifier, dataset, workers, progress, _scores)
    if blended:
        metrics["wise"] = blended
    metrics.update(
        best=best,
        epochs=trainer.epoch,
        stopped=trainer.stop_reason,
        seconds={"total": round(time.perf_counter() - started, 3)},
    )
    save_run(run_dir, classifier, config, metrics)
    training_report(run_dir, classifier, dataset, cache=False, workers=workers, progress=progress)
    return TrainResult(run_dir, metrics, classifier)


def _batches(dataset, backbone, opts: FinetuneOptions, workers) -> tuple[Batches, Batches]:
    """Augmented, shuffled training batches at the training resolution; validation batches as the
    saved model will predict (inference preprocessing), so val_loss picks the best model for that."""
    train_cfg, infer_cfg = backbone.train_data_config, backbone.data_config
    loader = {"batch_size": opts.batch_size, **_loader_options(workers, len(dataset.train), opts)}
    n = len(dataset.train)
    train = Batches(
        dataset.train,
        train_transform(train_cfg, opts.augment),
        train_cfg,
        shuffle=True,
        drop_last=n > opts.batch_size and n % opts.batch_size == 1,
        **loader,
    )
    return train, Batches(dataset.valid, eval_transform(infer_cfg), infer_cfg, **loader)


def _probe_head(backbone, dataset, batch_size: int, workers, progress: bool, seed: int) -> None:
    """Start the head as the linear strategy's fit on cached features, so fine-tuning starts
    from a good classifier and does not distort the features early (LP-FT)."""
    from imagefit.train.api import _extract, _labels, embed_in_shares

    extractor = FeatureExtractor(
        backbone.model, backbone.data_config, "auto", batch_size, workers, True, progress
    )
    if distributed.active():
        embed_in_shares(extractor, [s.path for s in dataset.train], "train features")
    features = _extract(extractor, dataset.train, "train")
    y = _labels(dataset.train, features)
    load_head(backbone.model, fit_linear_head(features.vectors, y, len(dataset.classes), seed, progress))


def _wise(classifier: Classifier, run_dir: Path, opts: FinetuneOptions, dataset, workers, progress, scores):
    """Blend the fine-tuned weights with the linear probe's they started from (WiSE-FT, Wortsman et
    al. 2022): w = a * fine-tuned + (1 - a) * probe, a = `opts.wise`. Both share the pretrained
    start and the probe head, so the blend lies between them in one basin; it keeps the probe's
    robustness and the fine-tuned features' gains. Returns what was done, with the fine-tuned-only
    validation scores, or None (a random head has no probe; --wise 1; an older run)."""
    path = run_dir / CHECKPOINTS / PROBE
    if opts.head_init != "linear" or opts.wise >= 1 or not path.is_file():
        return None
    extractor = classifier.extractor(workers=workers, cache=False, progress=progress)
    features = extractor([s.path for s in dataset.valid], desc="valid eval (fine-tuned only)")
    y = np.array([s.label for s, ok in zip(dataset.valid, features.ok, strict=True) if ok], np.int64)
    alone = scores(classifier, features, y)
    probe, a = load_state(path)["model"], opts.wise
    tuned = classifier.model.state_dict()
    classifier.model.load_state_dict(
        {
            k: (a * v + (1 - a) * probe[k].to(v.dtype)) if v.is_floating_point() else v
            for k, v in tuned.items()
        }
    )
    classifier.weights_changed()
    return {"fine_tuned_share": a, "fine_tuned_only": {"valid": alone}}


def _final_metrics(classifier: Classifier, dataset, workers, progress, scores) -> dict:
    """Loss and accuracy at the inference preprocessing, through the fast feature path."""
    out, skipped = {}, []
    extractor = classifier.extractor(workers=workers, cache=False, progress=progress)
    for split in ("train", "valid"):
        samples = getattr(dataset, split)
        features = extractor([s.path for s in samples], desc=f"{split} eval")
        y = np.array([s.label for s, ok in zip(samples, features.ok, strict=True) if ok], np.int64)
        out[split] = scores(classifier, features, y)
        skipped += [{"path": str(p), "reason": r} for p, r in features.errors]
    out["skipped"] = skipped
    return out
