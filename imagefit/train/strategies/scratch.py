"""The scratch strategy: a small CNN from a compact spec, trained from random weights on class folders.

Multi-label data trains as finetune does: binary cross-entropy, the best epoch by validation mAP,
per-label thresholds chosen on the validation images after training.
"""

from __future__ import annotations

from imagefit.data.augment import train_transform
from imagefit.data.channels import detect_channels
from imagefit.data.sources import data_source
from imagefit.data.transforms import eval_transform
from imagefit.errors import DataError
from imagefit.inference.classifier import Classifier
from imagefit.models.build import build_model, model_record
from imagefit.models.small_cnn import SmallCNN
from imagefit.runs import RunConfig
from imagefit.train.engine.batches import Batches, auto_image_size, loader_options, resolve_batch_size
from imagefit.train.engine.mixing import MixedBatches
from imagefit.train.engine.trainer import Trainer, seed_everything
from imagefit.train.epochs import choose_thresholds, dataset_losses, default_callbacks, fit_epochs
from imagefit.train.lifecycle import Strategy, saved_options
from imagefit.train.multilabel.scores import MONITOR as MULTILABEL_MONITOR
from imagefit.train.multilabel.thresholds import untuned_thresholds


class ScratchStrategy(Strategy):
    """A small CNN (`options.arch`) trained from scratch; the best epoch by validation loss (multi-label:
    validation mAP) is kept."""

    name = "scratch"
    multilabel = True

    def build(self, data, dataset):
        from timm.data import resolve_model_data_config

        opts = self.options
        opts.batch_size = resolve_batch_size(opts.batch_size, len(dataset.train))
        channels = opts.channels or detect_channels([s.path for s in dataset.train])
        size = opts.image_size or auto_image_size(dataset.train, opts.arch)
        seed_everything(self.seed)  # the same seed starts from the same weights
        model = SmallCNN(opts.arch, channels, len(dataset.classes), size)
        saved = saved_options(opts, image_size=size, channels=channels, small_cnn=model.describe())
        config = RunConfig(
            backbone=model.arch,
            arch=model.spec,
            weights="none",
            classes=dataset.classes,
            data_config=dict(resolve_model_data_config(model)),
            strategy=self.name,
            seed=self.seed,
            data=data_source(data),
            layout=dataset.layout,
            options=saved,
            model=model_record(model, model.spec),
        )
        if dataset.multilabel:
            config.task, config.thresholds = "multilabel", untuned_thresholds(len(dataset.classes))
        return model, config

    def rebuild(self, config: RunConfig, dataset):
        check_same_classes(config, dataset)
        self.options.batch_size = resolve_batch_size(self.options.batch_size, len(dataset.train))
        return build_model(config.model_record(), len(config.classes))

    def extract_options(self) -> dict:
        return {**super().extract_options(), "engine": "torch"}

    def fit(self, folder, dataset, model, config, resume):
        opts = self.options
        n_train = len(dataset.train)
        loader = {"batch_size": opts.batch_size, **loader_options(self.workers, n_train, opts.batch_size)}
        loader["n_labels"] = len(dataset.classes) if dataset.multilabel else None
        train, valid = self._batches(dataset, config.data_config, loader)
        fed = MixedBatches(train, len(dataset.classes), opts.mixup, self.seed) if opts.mixup > 0 else train
        monitor = MULTILABEL_MONITOR if dataset.multilabel else "val_loss"
        loss, eval_loss = dataset_losses(dataset, opts.class_weights, opts.label_smoothing)
        trainer = Trainer(
            model,
            fed,
            valid,
            optim=opts.optim(),
            epochs=opts.epochs,
            loss=loss,
            eval_loss=eval_loss,
            callbacks=default_callbacks(folder, self.progress, opts.patience, monitor, extra=self.callbacks),
            device=self.device,
            seed=self.seed,
            multilabel=dataset.multilabel,
        )
        best = fit_epochs(trainer, folder, resume)
        if best is None:
            return None, {}
        if dataset.multilabel:
            return self._multilabel_result(trainer, dataset, config, folder, best)
        metrics = self._metrics(trainer, dataset, config.data_config, loader, (train, valid), best)
        model = trainer.model.cpu().eval()
        info = {"backbone": config.backbone, "arch": config.arch, "weights": "none", "run": str(folder.path)}
        return Classifier(model, dataset.classes, config.data_config, info), metrics

    def _multilabel_result(self, trainer: Trainer, dataset, config: RunConfig, folder, best: dict):
        """The classifier with thresholds chosen on validation, and its scores at them."""
        model = trainer.model.cpu().eval()
        info = {"backbone": config.backbone, "arch": config.arch, "weights": "none", "run": str(folder.path)}
        thresholds = config.label_thresholds()
        classifier = Classifier(model, dataset.classes, config.data_config, info, thresholds)
        metrics = choose_thresholds(classifier, dataset, self.extract_options())
        config.thresholds = [float(t) for t in classifier.thresholds]
        metrics.update(best=best, epochs=trainer.epoch, stopped=trainer.stop_reason)
        return classifier, metrics

    def _batches(self, dataset, data_config: dict, loader: dict) -> tuple[Batches, Batches]:
        n, size = len(dataset.train), self.options.batch_size
        single_last = n > 1 and n % size == 1  # BatchNorm cannot train on one image
        augmented = train_transform(data_config, self.options.augment)
        train = Batches(dataset.train, augmented, data_config, shuffle=True, drop_last=single_last, **loader)
        valid = Batches(dataset.valid, eval_transform(data_config), data_config, **loader)
        return train, valid

    def _metrics(self, trainer: Trainer, dataset, data_config: dict, loader: dict, used: tuple, best: dict):
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


def check_same_classes(config: RunConfig, dataset) -> None:
    """A run resumes only on the classes it started with."""
    if dataset.classes != config.classes:
        raise DataError(
            f"{config.data} now has classes {', '.join(dataset.classes)}, the run was started with "
            f"{', '.join(config.classes)}: a changed dataset cannot be resumed"
        )
