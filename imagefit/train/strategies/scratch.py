"""The scratch strategy: a small CNN from a compact spec, trained from random weights on class folders.

Multi-label data trains as finetune does: binary cross-entropy, the best epoch by validation mAP,
per-label thresholds chosen on the validation images after training.
"""

from __future__ import annotations

from imagefit.data.channels import detect_channels
from imagefit.data.sources import data_source
from imagefit.models.build import build_model, model_record
from imagefit.models.small_cnn import SmallCNN
from imagefit.runs import RunConfig
from imagefit.train.engine.batches import auto_image_size
from imagefit.train.engine.trainer import seed_everything
from imagefit.train.epochs import EpochStrategy, with_task
from imagefit.train.lifecycle import saved_options


class ScratchStrategy(EpochStrategy):
    """A small CNN (`options.arch`) trained from scratch."""

    name = "scratch"

    def build(self, data, dataset):
        from timm.data import resolve_model_data_config

        opts = self.options
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
        return model, with_task(config, dataset)

    def rebuild_model(self, config: RunConfig):
        return build_model(config.model_record(), len(config.classes))
