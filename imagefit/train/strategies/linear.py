"""The linear strategy: a logistic-regression head (`train.heads`) on frozen, cached backbone features."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from imagefit.errors import OptionError
from imagefit.features.extract import FeatureExtractor
from imagefit.inference.classifier import Classifier
from imagefit.models.registry import create_backbone, get_spec
from imagefit.train.engine import distributed
from imagefit.train.extraction import (
    check_classes,
    embed_in_shares,
    extract_split,
    label_matrix,
    labels_of,
    split_scores,
)
from imagefit.train.heads import (
    LinearHead,
    fit_linear_head,
    fit_multilabel_head,
    label_issue_count,
    load_head,
)
from imagefit.train.lifecycle import Strategy, backbone_config, saved_options
from imagefit.train.options import DEFAULT_BATCH

log = logging.getLogger(__name__)


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
        return DEFAULT_BATCH if self.options.batch_size is None else self.options.batch_size

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
