"""The base of the strategies that train a network for epochs: one assembly of the training for all.

`EpochStrategy.fit` builds the batches (augmented and shuffled for training, mixed with --mixup;
validation at the inference preprocessing, as the saved model will predict), the losses, the
default callbacks with the monitor of the best epoch, and the Trainer; it trains stage by stage
(from the last checkpoint when resuming), keeps the best epoch's weights, and scores the kept model
as predictions will (multi-label: at per-label thresholds chosen on the validation images).

A subclass brings its model (`build`, `rebuild_model`) and overrides only the hooks that are its
own: `preprocessing`, `stages`, `own_callbacks`, `before_fit`, `after_fit`. Its options are an
`EpochOptions` (`train.options`), which give the optimiser (`optim()`) and the stages
(`stage_plan()`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from torch import nn

from imagefit.data.augment import train_transform
from imagefit.data.transforms import eval_transform
from imagefit.errors import DataError, OptionError
from imagefit.inference.classifier import Classifier
from imagefit.runs import RunConfig, RunFolder
from imagefit.train.callbacks import (
    Checkpoint,
    EarlyStopping,
    HistoryCSV,
    NaNGuard,
    ProgressBar,
    load_weights,
)
from imagefit.train.engine import distributed
from imagefit.train.engine.batches import Batches, loader_options
from imagefit.train.engine.class_weights import training_loss
from imagefit.train.engine.mixing import MixedBatches
from imagefit.train.engine.stages import Stage
from imagefit.train.engine.trainer import Trainer
from imagefit.train.extraction import label_matrix, labels_of, split_scores
from imagefit.train.lifecycle import Strategy
from imagefit.train.multilabel.loss import MultiLabelLoss, multilabel_training_loss
from imagefit.train.multilabel.scores import MONITOR as MULTILABEL_MONITOR
from imagefit.train.multilabel.thresholds import best_thresholds, untuned_thresholds
from imagefit.train.options import DEFAULT_BATCH


class EpochStrategy(Strategy):
    """A network trained for epochs by the Trainer; the best epoch by validation loss (multi-label:
    validation mAP) is kept."""

    multilabel = True

    # --- the hooks a strategy overrides -------------------------------------------------------------

    def rebuild_model(self, config: RunConfig) -> nn.Module:
        """The architecture of a run being resumed (its weights come from the checkpoint)."""
        raise NotImplementedError

    def preprocessing(self, config: RunConfig) -> tuple[dict, dict]:
        """(training, inference) data configs; by default the run's for both."""
        return config.data_config, config.data_config

    def stages(self, model: nn.Module) -> list[Stage]:
        """The stages to train; by default the options'."""
        return self.options.stage_plan()

    def own_callbacks(self) -> list:
        """The strategy's callbacks, before the default ones; by default none."""
        return []

    def before_fit(self, folder: RunFolder, model: nn.Module, resume: bool) -> None:
        """What to keep before the first epoch; by default nothing."""

    def after_fit(self, classifier: Classifier, folder: RunFolder, dataset) -> dict:
        """Change the kept model before it is scored; returns metrics of what was done (default: none)."""
        return {}

    # --- the assembly every epoch strategy shares -----------------------------------------------------

    def extract_options(self) -> dict:
        """The trained network predicts with torch unless a strategy's options choose an engine."""
        return {**super().extract_options(), "engine": "torch"}

    def read_data(self, data):
        """The dataset, and the batch size it allows (at most its training images)."""
        dataset = super().read_data(data)
        self.options.batch_size = resolve_batch_size(self.options.batch_size, len(dataset.train))
        return dataset

    def rebuild(self, config: RunConfig, dataset) -> nn.Module:
        """The model of a run being resumed, on the classes it started with."""
        check_same_classes(config, dataset)
        return self.rebuild_model(config)

    def fit(self, folder, dataset, model, config, resume):
        """Train, keep the best epoch, score it; (None, {}) on a worker rank of a distributed run."""
        started = time.perf_counter()
        self.before_fit(folder, model, resume)
        trainer = self.trainer(folder, dataset, model, config)
        best = fit_epochs(trainer, folder, resume)
        if best is None:
            return None, {}
        classifier, metrics = self.result(trainer, folder, dataset, config)
        metrics.update(best=best, epochs=trainer.epoch, stopped=trainer.stop_reason)
        metrics["seconds"] = {"fit": round(time.perf_counter() - started, 3)}
        return classifier, metrics

    def trainer(self, folder: RunFolder, dataset, model: nn.Module, config: RunConfig) -> Trainer:
        """The Trainer of this run: batches, losses, optimiser, stages and callbacks."""
        train, valid = self.batches(dataset, config)
        loss, eval_loss = self.losses(dataset)
        return Trainer(
            model,
            train,
            valid,
            optim=self.options.optim(),
            stages=self.stages(model),
            loss=loss,
            eval_loss=eval_loss,
            callbacks=self.training_callbacks(folder, dataset),
            device=self.device,
            seed=self.seed,
            multilabel=dataset.multilabel,
        )

    def batches(self, dataset, config: RunConfig) -> tuple:
        """Training batches as the Trainer takes them (augmented, shuffled, mixed with --mixup) and
        validation batches at the inference preprocessing, so the best epoch is the best at that."""
        opts, (train_cfg, infer_cfg) = self.options, self.preprocessing(config)
        n, size = len(dataset.train), opts.batch_size
        loader = {"batch_size": size, **loader_options(self.workers, n, size)}
        loader["n_labels"] = len(dataset.classes) if dataset.multilabel else None
        single_last = n > size and n % size == 1  # BatchNorm cannot train on a batch of one image
        augmented = train_transform(train_cfg, opts.augment)
        train = Batches(dataset.train, augmented, train_cfg, shuffle=True, drop_last=single_last, **loader)
        valid = Batches(dataset.valid, eval_transform(infer_cfg), infer_cfg, **loader)
        if opts.mixup > 0:
            return MixedBatches(train, len(dataset.classes), opts.mixup, self.seed), valid
        return train, valid

    def losses(self, dataset) -> tuple[nn.Module, nn.Module]:
        """(training loss, validation loss): cross-entropy, or per-label binary cross-entropy; the
        training loss weighted with --class-weights auto and smoothed with --label-smoothing."""
        n, balanced = len(dataset.classes), self.options.class_weights == "auto"
        smoothing = self.options.label_smoothing
        if dataset.multilabel:
            sets = [s.label_set for s in dataset.train]
            return multilabel_training_loss(sets, n, balanced, smoothing), MultiLabelLoss()
        labels = [s.label for s in dataset.train]
        return training_loss(labels, n, balanced, smoothing), nn.CrossEntropyLoss()

    def training_callbacks(self, folder: RunFolder, dataset) -> list:
        """The strategy's callbacks, the defaults (the best epoch by val_loss, multi-label: val_mAP),
        then the caller's."""
        monitor = MULTILABEL_MONITOR if dataset.multilabel else "val_loss"
        defaults = default_callbacks(folder, self.progress, self.options.patience, monitor, self.callbacks)
        return [*self.own_callbacks(), *defaults]

    def result(self, trainer: Trainer, folder: RunFolder, dataset, config: RunConfig):
        """The kept model as a classifier, and its scores on train and valid (multi-label: at the
        thresholds chosen on validation, which the config keeps)."""
        _, infer_cfg = self.preprocessing(config)
        info = {"backbone": config.backbone, "arch": config.arch, "weights": config.weights}
        model = trainer.model.cpu().eval()
        classifier = Classifier(model, dataset.classes, infer_cfg, info, config.label_thresholds())
        done = self.after_fit(classifier, folder, dataset)
        metrics = final_scores(classifier, dataset, self.extract_options())
        if classifier.multilabel:
            config.thresholds = [float(t) for t in classifier.thresholds]
        return classifier, {**metrics, **done}


def with_task(config: RunConfig, dataset) -> RunConfig:
    """The config of a run on multi-label data says so, with thresholds of 0.5 until chosen."""
    if dataset.multilabel:
        config.task, config.thresholds = "multilabel", untuned_thresholds(len(dataset.classes))
    return config


def resolve_batch_size(batch_size: int | None, n_train: int) -> int:
    """The batch size to train with; one asked for that exceeds the training set is an error."""
    if batch_size is None:
        return max(1, min(DEFAULT_BATCH, n_train))
    if batch_size > n_train:
        raise OptionError(f"--batch-size {batch_size} is larger than the {n_train} training images: lower it")
    return batch_size


def check_same_classes(config: RunConfig, dataset) -> None:
    """A run resumes only on the classes it started with."""
    if dataset.classes != config.classes:
        raise DataError(
            f"{config.data} now has classes {', '.join(dataset.classes)}, the run was started with "
            f"{', '.join(config.classes)}: a changed dataset cannot be resumed"
        )


def default_callbacks(
    folder: RunFolder,
    progress: bool,
    patience: int | None = None,
    monitor: str = "val_loss",
    extra: Sequence = (),
) -> list:
    """NaN guard, history.csv, checkpoints (best by `monitor`), early stopping, progress, then `extra`."""
    callbacks = [NaNGuard(), HistoryCSV(folder.history), Checkpoint(folder.checkpoints, monitor=monitor)]
    if patience is not None:  # on val_loss, or on the monitor when it is a multi-label score
        stop_on = monitor if monitor == MULTILABEL_MONITOR else "val_loss"
        callbacks.append(EarlyStopping(stop_on, patience=patience))
    callbacks.append(ProgressBar(disable=not progress))
    return [*callbacks, *extra]


def fit_epochs(trainer: Trainer, folder: RunFolder, resume: bool) -> dict | None:
    """Train (from the last checkpoint when resuming) and load the best epoch's weights into the model.

    Returns the best checkpoint's record, or None on a worker rank of a distributed run.
    """
    if resume:
        trainer.resume(folder.checkpoints)
    trainer.fit()
    if not distributed.is_main():
        return None
    if trainer.epoch == 0:
        raise OptionError(trainer.stop_reason or "training stopped before the first epoch ended")
    return load_weights(folder.best, trainer.model)


def final_scores(classifier: Classifier, dataset, extract_options: dict) -> dict:
    """Loss and accuracy on train and valid at the inference preprocessing, through the feature path
    that predictions take (multi-label: the thresholds chosen on validation, and the scores at them)."""
    if classifier.multilabel:
        return choose_thresholds(classifier, dataset, extract_options)
    out, skipped = {}, []
    extractor = classifier.extractor(**extract_options)
    for split in ("train", "valid"):
        samples = getattr(dataset, split)
        features = extractor([s.path for s in samples], desc=f"{split} eval")
        out[split] = split_scores(classifier, features, labels_of(samples, features))
        skipped += [{"path": str(p), "reason": r} for p, r in features.errors]
    return {**out, "skipped": skipped}


def choose_thresholds(classifier: Classifier, dataset, extract_options: dict) -> dict:
    """Set the classifier's thresholds from the validation images; the scores of train and valid.

    Each label's threshold is the probability that gives its best F1 on the validation images, so
    the validation scores at them are a little optimistic (mAP is not: it does not depend on them).
    Returns {'train', 'valid', 'skipped'} as `split_scores` gives them, at the chosen thresholds.
    """
    extractor = classifier.extractor(**extract_options)
    features, targets, skipped = {}, {}, []
    for split in ("valid", "train"):
        samples = getattr(dataset, split)
        features[split] = extractor([s.path for s in samples], desc=f"{split} eval")
        targets[split] = targets_of(classifier, samples, features[split])
        skipped += [{"path": str(p), "reason": r} for p, r in features[split].errors]
    if len(targets["valid"]):
        probabilities = classifier.probabilities(features["valid"].vectors)
        classifier.thresholds = best_thresholds(targets["valid"], probabilities).astype(np.float32)
    out = {split: split_scores(classifier, features[split], targets[split]) for split in ("train", "valid")}
    return {**out, "skipped": skipped}


def targets_of(classifier: Classifier, samples, features) -> np.ndarray:
    """The labels of the samples whose features were extracted: indices, or 0/1 rows (multi-label)."""
    if classifier.multilabel:
        return label_matrix(samples, features, len(classifier.classes))
    return labels_of(samples, features)
