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

Multi-label data trains with binary cross-entropy (`train.multilabel_loss`), the probe head is the
linear strategy's multi-label fit, the best epoch is the one with the highest validation mAP, and
the per-label thresholds are chosen on the validation images once training is over.
"""

from __future__ import annotations

import time

from imagefit.data.augment import train_transform
from imagefit.data.transforms import eval_transform
from imagefit.inference.classifier import Classifier
from imagefit.models.registry import create_backbone, get_spec
from imagefit.runs import RunConfig
from imagefit.train.callbacks.frozen_norms import FrozenBatchNorm
from imagefit.train.engine import distributed
from imagefit.train.engine.batches import Batches, loader_options, resolve_batch_size
from imagefit.train.engine.mixing import MixedBatches
from imagefit.train.engine.stages import coarse_groups, parse_stages
from imagefit.train.engine.state import load_state, save_state
from imagefit.train.engine.trainer import Trainer, seed_everything
from imagefit.train.epochs import choose_thresholds, dataset_losses, default_callbacks, fit_epochs, targets_of
from imagefit.train.extraction import (
    embed_in_shares,
    extract_split,
    label_matrix,
    labels_of,
    split_scores,
)
from imagefit.train.heads import fit_linear_head, fit_multilabel_head, load_head
from imagefit.train.lifecycle import Strategy, backbone_config, saved_options
from imagefit.train.multilabel.scores import MONITOR as MULTILABEL_MONITOR
from imagefit.train.multilabel.thresholds import untuned_thresholds
from imagefit.train.strategies.scratch import check_same_classes


class FinetuneStrategy(Strategy):
    """A pretrained backbone with a new head, trained in stages; saved as a WiSE-FT blend."""

    name = "finetune"
    multilabel = True

    def check(self) -> None:
        get_spec(self.options.model)

    def build(self, data, dataset):
        opts = self.options
        opts.batch_size = resolve_batch_size(opts.batch_size, len(dataset.train))
        seed_everything(self.seed)
        n = len(dataset.classes)
        self.backbone = create_backbone(opts.model, opts.weights, num_classes=n, image_size=opts.image_size)
        if opts.head_init == "linear":
            self._probe_head(dataset)
        saved = saved_options(opts, train_data_config=self.backbone.train_data_config)
        config = backbone_config(self.backbone, dataset, self.name, self.seed, data, saved)
        if dataset.multilabel:
            config.task, config.thresholds = "multilabel", untuned_thresholds(n)
        return self.backbone.model, config

    def rebuild(self, config: RunConfig, dataset):
        check_same_classes(config, dataset)
        opts = self.options
        opts.batch_size = resolve_batch_size(opts.batch_size, len(dataset.train))
        # the weights come from the checkpoint: build the architecture only
        self.backbone = create_backbone(config.backbone, "none", len(config.classes), opts.image_size)
        self.backbone.weights = config.weights
        return self.backbone.model

    def fit(self, folder, dataset, model, config, resume):
        opts, started = self.options, time.perf_counter()
        if not resume and opts.head_init == "linear" and opts.wise < 1 and distributed.is_main():
            save_state(folder.probe, {"model": model.state_dict()})  # for WiSE-FT
        groups = coarse_groups(model)
        train, valid = self._batches(dataset, opts)
        if opts.mixup > 0:
            train = MixedBatches(train, len(dataset.classes), opts.mixup, self.seed)
        norms = [FrozenBatchNorm()] if opts.frozen_norms else []
        monitor = MULTILABEL_MONITOR if dataset.multilabel else "val_loss"
        loss, eval_loss = dataset_losses(dataset, opts.class_weights, opts.label_smoothing)
        callbacks = default_callbacks(folder, self.progress, opts.patience, monitor, extra=self.callbacks)
        trainer = Trainer(
            model,
            train,
            valid,
            optim=opts.optim(),
            stages=parse_stages(opts.stages, len(groups), groups),
            seed=self.seed,
            loss=loss,
            eval_loss=eval_loss,
            callbacks=[*norms, *callbacks],
            device=self.device,
            multilabel=dataset.multilabel,
        )
        best = fit_epochs(trainer, folder, resume)
        if best is None:
            return None, {}
        bb = self.backbone
        info = {"backbone": bb.spec.name, "arch": bb.spec.arch, "weights": bb.weights}
        thresholds = config.label_thresholds()
        classifier = Classifier(bb.model.cpu().eval(), dataset.classes, bb.data_config, info, thresholds)
        blended = self._wise(classifier, folder, dataset)
        metrics = self._final_metrics(classifier, dataset)
        if classifier.multilabel:
            config.thresholds = [float(t) for t in classifier.thresholds]
        if blended:
            metrics["wise"] = blended
        metrics.update(best=best, epochs=trainer.epoch, stopped=trainer.stop_reason)
        metrics["seconds"] = {"fit": round(time.perf_counter() - started, 3)}
        return classifier, metrics

    def extract_options(self) -> dict:
        return {**super().extract_options(), "engine": self.options.engine}

    def _batches(self, dataset, opts) -> tuple[Batches, Batches]:
        """Augmented, shuffled training batches at the training resolution; validation batches as the
        saved model will predict (inference preprocessing), so val_loss picks the best model for that."""
        train_cfg, infer_cfg = self.backbone.train_data_config, self.backbone.data_config
        n = len(dataset.train)
        loader = {"batch_size": opts.batch_size, **loader_options(self.workers, n, opts.batch_size)}
        loader["n_labels"] = len(dataset.classes) if dataset.multilabel else None
        train = Batches(
            dataset.train,
            train_transform(train_cfg, opts.augment),
            train_cfg,
            shuffle=True,
            drop_last=n > opts.batch_size and n % opts.batch_size == 1,
            **loader,
        )
        return train, Batches(dataset.valid, eval_transform(infer_cfg), infer_cfg, **loader)

    def _probe_head(self, dataset) -> None:
        """Start the head as the linear strategy's fit on cached features, so fine-tuning starts
        from a good classifier and does not distort the features early (LP-FT)."""
        from imagefit.features.extract import FeatureExtractor

        bb = self.backbone
        extractor = FeatureExtractor(
            bb.model,
            bb.data_config,
            self.options.engine,
            self.options.batch_size,
            self.workers,
            True,
            self.progress,
        )
        if distributed.active():
            embed_in_shares(extractor, [s.path for s in dataset.train], "train features")
        features = extract_split(extractor, dataset.train, "train")
        n = len(dataset.classes)
        if dataset.multilabel:
            y = label_matrix(dataset.train, features, n)
            load_head(bb.model, fit_multilabel_head(features.vectors, y, self.seed, self.progress))
        else:
            y = labels_of(dataset.train, features)
            load_head(bb.model, fit_linear_head(features.vectors, y, n, self.seed, self.progress))

    def _wise(self, classifier: Classifier, folder, dataset) -> dict | None:
        """Blend the fine-tuned weights with the linear probe's they started from (WiSE-FT, Wortsman et
        al. 2022): w = a * fine-tuned + (1 - a) * probe, a = `wise`. Both share the pretrained start
        and the probe head, so the blend lies between them in one basin; it keeps the probe's
        robustness and the fine-tuned features' gains. Returns what was done, with the fine-tuned-only
        validation scores, or None (a random head has no probe; --wise 1; an older run)."""
        opts = self.options
        if opts.head_init != "linear" or opts.wise >= 1 or not folder.probe.is_file():
            return None
        extractor = classifier.extractor(**self.extract_options())
        features = extractor([s.path for s in dataset.valid], desc="valid eval (fine-tuned only)")
        alone = split_scores(classifier, features, targets_of(classifier, dataset.valid, features))
        probe, a = load_state(folder.probe)["model"], opts.wise
        tuned = classifier.model.state_dict()
        classifier.model.load_state_dict(
            {
                k: (a * v + (1 - a) * probe[k].to(v.dtype)) if v.is_floating_point() else v
                for k, v in tuned.items()
            }
        )
        classifier.weights_changed()
        return {"fine_tuned_share": a, "fine_tuned_only": {"valid": alone}}

    def _final_metrics(self, classifier: Classifier, dataset) -> dict:
        """Loss and accuracy at the inference preprocessing, through the fast feature path
        (multi-label: the thresholds chosen on validation, and the scores at them)."""
        if classifier.multilabel:
            return choose_thresholds(classifier, dataset, self.extract_options())
        out, skipped = {}, []
        extractor = classifier.extractor(**self.extract_options())
        for split in ("train", "valid"):
            samples = getattr(dataset, split)
            features = extractor([s.path for s in samples], desc=f"{split} eval")
            out[split] = split_scores(classifier, features, labels_of(samples, features))
            skipped += [{"path": str(p), "reason": r} for p, r in features.errors]
        out["skipped"] = skipped
        return out
