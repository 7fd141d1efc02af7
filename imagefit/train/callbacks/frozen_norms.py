"""Keep every BatchNorm layer in inference mode while fine-tuning (Keras's advice for small data).

Unfrozen BatchNorm layers re-estimate their statistics from small, augmented batches of a new
dataset and drift from the ones the pretrained weights expect; in inference mode they keep the
pretrained statistics while their scale and shift still train.
"""

from __future__ import annotations

from torch.nn.modules.batchnorm import _BatchNorm

from imagefit.train.callbacks.base import Callback


class FrozenBatchNorm(Callback):
    """Puts the model's BatchNorm layers in eval mode before every training batch."""

    def on_batch_begin(self, trainer, logs: dict) -> None:
        for module in trainer.model.modules():
            if isinstance(module, _BatchNorm):
                module.eval()
