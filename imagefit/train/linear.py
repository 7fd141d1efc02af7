"""The linear strategy: logistic regression on frozen, cached features, folded into a torch Linear."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from imagefit.errors import OptionError
from imagefit.features.extract import FeatureExtractor
from imagefit.inference.classifier import Classifier
from imagefit.models.registry import create_backbone, get_spec
from imagefit.train import distributed
from imagefit.train.c_search import C_GRID, C_LADDER, search_c
from imagefit.train.extraction import (
    check_classes,
    embed_in_shares,
    extract_split,
    label_matrix,
    labels_of,
    split_scores,
)
from imagefit.train.multilabel import fit_multilabel_head
from imagefit.train.run import Strategy, backbone_config, saved_options

log = logging.getLogger(__name__)

__all__ = [
    "C_GRID",
    "C_LADDER",
    "LinearHead",
    "LinearStrategy",
    "fit_linear_head",
    "label_issue_count",
    "load_head",
    "search_c",
]


@dataclass
class LinearHead:
    """Weights of logits = features @ weight.T + bias, for every class."""

    weight: np.ndarray  # (n_classes, dim)
    bias: np.ndarray  # (n_classes,)
    C: float
    cv_loss: dict[float, float]  # cross-validated log loss of every C searched, by C
    oof: np.ndarray | None = None  # out-of-fold class probabilities at the chosen C (None: no folds)

    def summary(self) -> dict:
        """The head's entry in metrics.json: the chosen C, the grid searched and its losses."""
        return {
            "C": self.C,
            "C_grid": sorted(self.cv_loss),
            "cv_log_loss": {str(k): v for k, v in sorted(self.cv_loss.items())},
        }


def fit_linear_head(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    seed: int = 0,
    progress: bool = True,
    balanced: bool = False,
) -> LinearHead:
    """Standardise, choose C by stratified cross-validated log loss, refit on all, fold the scaling in.

    `balanced` weighs each class by n / (k * n_c) in the fit (`--class-weights auto`).
    """
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    folds = min(3, int(np.unique(y, return_counts=True)[1].min()))
    cv_loss: dict[float, float] = {}
    oof: dict[float, np.ndarray] = {}
    if folds >= 2:

        def loss(c: float) -> float:
            value, oof[c] = _cv_loss(z, y, c, folds, seed, n_classes, balanced)
            return value

        cv_loss = search_c(loss, progress)
        best = min(cv_loss, key=cv_loss.get)
    else:
        best = 1.0
    model = _logreg(best, seed, balanced).fit(z, y)
    weight, bias = _full_rank(model, n_classes)
    return LinearHead(weight / scale, bias - (weight / scale) @ mean, best, cv_loss, oof.get(best))


def _logreg(c: float, seed: int, balanced: bool = False) -> LogisticRegression:
    weight = "balanced" if balanced else None
    return LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight=weight)


def _cv_loss(
    z: np.ndarray, y: np.ndarray, c: float, folds: int, seed: int, n_classes: int, balanced: bool
) -> tuple[float, np.ndarray]:
    """Mean log loss over the folds, and every image's out-of-fold class probabilities."""
    losses, oof = [], np.zeros((len(y), n_classes))
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for tr, va in split.split(z, y):
        model = _logreg(c, seed, balanced).fit(z[tr], y[tr])
        proba = np.zeros((len(va), n_classes))
        proba[:, model.classes_] = model.predict_proba(z[va])
        proba /= proba.sum(1, keepdims=True)
        oof[va] = proba
        losses.append(log_loss(y[va], proba, labels=list(range(n_classes))))
    return float(np.mean(losses)), oof


def label_issue_count(probabilities: np.ndarray, labels: np.ndarray) -> int:
    """How many images confident learning (cleanlab) estimates to be mislabelled, from out-of-fold
    probabilities already computed."""
    from cleanlab.count import num_label_issues

    labels = np.asarray(labels, np.int64)
    if len(np.unique(labels)) < 2 or len(labels) < 2:
        return 0
    probs = np.asarray(probabilities, np.float64)
    return int(num_label_issues(labels, probs / probs.sum(1, keepdims=True)))


def _full_rank(model: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One logit per class; a binary model's single logit is split as -z/2, +z/2 (same softmax)."""
    coef, icpt = model.coef_, model.intercept_
    present = model.classes_
    if len(present) == 2:
        coef = np.concatenate([-coef / 2, coef / 2])
        icpt = np.concatenate([-icpt / 2, icpt / 2])
    weight = np.zeros((n_classes, coef.shape[1]))
    bias = np.full(n_classes, -1e4)  # a class absent from training is never predicted
    weight[present], bias[present] = coef, icpt
    return weight.astype(np.float32), bias.astype(np.float32)


def load_head(model: torch.nn.Module, head) -> None:
    """Copy a fitted head into the model's classifier layer (which must have the head's shape)."""
    fc = model.get_classifier()
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(head.weight))
        fc.bias.copy_(torch.from_numpy(head.bias))


class LinearStrategy(Strategy):
    """Features of the backbone extracted once (cached), a logistic-regression head fitted on them."""

    name = "linear"
    multilabel = True

    def check(self) -> None:
        get_spec(self.options.model)  # a wrong name fails before the dataset is scanned

    def build(self, data, dataset):
        opts = self.options
        torch.manual_seed(self.seed)  # an untrained backbone starts the same for the same seed
        self.backbone = create_backbone(opts.model, opts.weights, image_size=opts.image_size)
        saved = saved_options(opts, batch_size=self.batch_size)
        return self.backbone.model, backbone_config(self.backbone, dataset, self.name, self.seed, data, saved)

    @property
    def batch_size(self) -> int:
        return 32 if self.options.batch_size is None else self.options.batch_size

    def extract_options(self) -> dict:
        opts = self.options
        return {
            "engine": opts.engine,
            "batch_size": self.batch_size,
            "workers": self.workers,
            "cache": opts.cache,
            "progress": self.progress,
        }

    def fit(self, folder, dataset, model, config, resume):
        started, opts, backbone = time.perf_counter(), self.options, self.backbone
        extractor = FeatureExtractor(model, backbone.data_config, **self.extract_options())
        if distributed.active():
            if not opts.cache:
                raise OptionError(
                    "distributed feature extraction shares vectors through the cache: drop --no-cache"
                )
            embed_in_shares(extractor, [s.path for s in [*dataset.train, *dataset.valid, *dataset.test]])
            if not distributed.is_main():
                return None, {}  # rank 0 fits
        train_f = extract_split(extractor, dataset.train, "train")
        valid_f = extract_split(extractor, dataset.valid, "valid")
        features_done = time.perf_counter()
        n, balanced = len(dataset.classes), opts.class_weights == "auto"
        if dataset.multilabel:
            y, y_valid = label_matrix(dataset.train, train_f, n), label_matrix(dataset.valid, valid_f, n)
            head = fit_multilabel_head(train_f.vectors, y, self.seed, self.progress, balanced)
            config.task, config.thresholds = "multilabel", [float(t) for t in head.thresholds]
        else:
            y, y_valid = labels_of(dataset.train, train_f), labels_of(dataset.valid, valid_f)
            check_classes(dataset.classes, y, dataset.root)
            head = fit_linear_head(train_f.vectors, y, n, self.seed, self.progress, balanced)
            self._hint_label_issues(head, y, dataset.root)
        model.reset_classifier(n)
        load_head(model, head)
        meta = {"backbone": backbone.spec.name, "arch": backbone.spec.arch, "weights": backbone.weights}
        classifier = Classifier(model, dataset.classes, backbone.data_config, meta, config.label_thresholds())
        metrics = {
            "train": split_scores(classifier, train_f, y),
            "valid": split_scores(classifier, valid_f, y_valid),
            "head": head.summary(),
            "features": {
                "reused": train_f.reused + valid_f.reused,
                "computed": train_f.computed + valid_f.computed,
            },
            "skipped": [{"path": str(p), "reason": r} for p, r in train_f.errors + valid_f.errors],
            "seconds": {"features": round(features_done - started, 3)},
        }
        return classifier, metrics

    def _hint_label_issues(self, head: LinearHead, y: np.ndarray, root) -> None:
        """One line when the head's out-of-fold probabilities suggest mislabelled training images."""
        if head.oof is None:
            return
        n = label_issue_count(head.oof, y)
        if n:
            log.info("%d training image(s) look mislabelled: run imagefit audit %s", n, root)
