"""What the strategies that train for epochs share: their callbacks and the fit that keeps the best."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imagefit.errors import OptionError
from imagefit.inference.classifier import Classifier
from imagefit.runs import RunFolder
from imagefit.train.callbacks import (
    Checkpoint,
    EarlyStopping,
    HistoryCSV,
    NaNGuard,
    ProgressBar,
    load_weights,
)
from imagefit.train.engine import distributed
from imagefit.train.engine.class_weights import training_loss
from imagefit.train.engine.trainer import Trainer
from imagefit.train.extraction import label_matrix, labels_of, split_scores
from imagefit.train.multilabel.loss import MultiLabelLoss, multilabel_training_loss
from imagefit.train.multilabel.scores import MONITOR as MULTILABEL_MONITOR
from imagefit.train.multilabel.thresholds import best_thresholds


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


def dataset_losses(dataset, class_weights: str, smoothing: float = 0.0):
    """(training loss, validation loss) for a dataset: cross-entropy, or per-label binary cross-entropy."""
    from torch import nn

    n, balanced = len(dataset.classes), class_weights == "auto"
    if dataset.multilabel:
        sets = [s.label_set for s in dataset.train]
        return multilabel_training_loss(sets, n, balanced, smoothing), MultiLabelLoss()
    labels = [s.label for s in dataset.train]
    return training_loss(labels, n, balanced, smoothing), nn.CrossEntropyLoss()


def targets_of(classifier: Classifier, samples, features) -> np.ndarray:
    """The labels of the samples whose features were extracted: indices, or 0/1 rows (multi-label)."""
    if classifier.multilabel:
        return label_matrix(samples, features, len(classifier.classes))
    return labels_of(samples, features)


def choose_thresholds(classifier: Classifier, dataset, extract_options: dict) -> dict:
    """Set the classifier's thresholds from the validation images; the scores of train and valid.

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
