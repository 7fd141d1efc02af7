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

Multi-label data trains with binary cross-entropy (`train.multilabel.loss`), the probe head is the
multi-label linear head, the best epoch is the one with the highest validation mAP, and the
per-label thresholds are chosen on the validation images once training is over (`train.epochs`).
"""

from __future__ import annotations

from imagefit.inference.classifier import Classifier
from imagefit.models.registry import create_backbone, get_spec
from imagefit.runs import RunConfig
from imagefit.train.callbacks.frozen_norms import FrozenBatchNorm
from imagefit.train.engine import distributed
from imagefit.train.engine.state import load_state, save_state
from imagefit.train.engine.trainer import seed_everything
from imagefit.train.epochs import EpochStrategy, targets_of, with_task
from imagefit.train.extraction import embed_in_shares, extract_split, label_matrix, labels_of, split_scores
from imagefit.train.heads import fit_linear_head, fit_multilabel_head, load_head
from imagefit.train.lifecycle import backbone_config, saved_options


class FinetuneStrategy(EpochStrategy):
    """A pretrained backbone with a new head, trained in stages; saved as a WiSE-FT blend."""

    name = "finetune"

    def check(self) -> None:
        get_spec(self.options.model)

    def build(self, data, dataset):
        opts = self.options
        seed_everything(self.seed)
        n = len(dataset.classes)
        self.backbone = create_backbone(opts.model, opts.weights, num_classes=n, image_size=opts.image_size)
        if opts.head_init == "linear":
            self._probe_head(dataset)
        saved = saved_options(opts, train_data_config=self.backbone.train_data_config)
        config = backbone_config(self.backbone, dataset, self.name, self.seed, data, saved)
        return self.backbone.model, with_task(config, dataset)

    def rebuild_model(self, config: RunConfig):
        # the weights come from the checkpoint: build the architecture only
        n, size = len(config.classes), self.options.image_size
        self.backbone = create_backbone(config.backbone, "none", n, size)
        self.backbone.weights = config.weights
        return self.backbone.model

    def preprocessing(self, config: RunConfig) -> tuple[dict, dict]:
        """Training at the backbone's training resolution; validation as predictions will see images."""
        return self.backbone.train_data_config, self.backbone.data_config

    def own_callbacks(self) -> list:
        return [FrozenBatchNorm()] if self.options.frozen_norms else []

    def before_fit(self, folder, model, resume) -> None:
        """The probe's weights, for WiSE-FT after training."""
        opts = self.options
        if not resume and opts.head_init == "linear" and opts.wise < 1 and distributed.is_main():
            save_state(folder.probe, {"model": model.state_dict()})

    def extract_options(self) -> dict:
        return {**super().extract_options(), "engine": self.options.engine}

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

    def after_fit(self, classifier: Classifier, folder, dataset) -> dict:
        """Blend the fine-tuned weights with the linear probe's they started from (WiSE-FT, Wortsman et
        al. 2022): w = a * fine-tuned + (1 - a) * probe, a = `wise`. Both share the pretrained start
        and the probe head, so the blend lies between them in one basin; it keeps the probe's
        robustness and the fine-tuned features' gains. Returns {'wise': what was done, with the
        fine-tuned-only validation scores}, or {} (a random head has no probe; --wise 1; an older run)."""
        opts = self.options
        if opts.head_init != "linear" or opts.wise >= 1 or not folder.probe.is_file():
            return {}
        extractor = classifier.extractor(**self.extract_options())
        features = extractor([s.path for s in dataset.valid], desc="valid eval (fine-tuned only)")
        alone = split_scores(classifier, features, targets_of(classifier, dataset.valid, features))
        probe, a = load_state(folder.probe)["model"], opts.wise
        tuned = classifier.model.state_dict()
        classifier.model.load_state_dict(
            {
                k: (a * v + (1 - a) * probe[k].to(v.device, v.dtype)) if v.is_floating_point() else v
                for k, v in tuned.items()
            }
        )
        classifier.weights_changed()
        return {"wise": {"fine_tuned_share": a, "fine_tuned_only": {"valid": alone}}}
