"""Stop training when the loss becomes NaN or infinite, keeping the last good checkpoint."""

from __future__ import annotations

import logging
import math

from imagefit.train.callbacks.base import Callback

log = logging.getLogger(__name__)


class NaNGuard(Callback):
    """Stop at the first batch whose loss is not finite (Keras' TerminateOnNaN).

    The broken epoch never ends, so no checkpoint or history row is written for it: the last
    checkpoint stays the last good epoch. The reason is left in `trainer.stop_reason`.
    """

    def on_batch_end(self, trainer, logs: dict) -> None:
        loss = logs.get("batch_loss", logs.get("loss"))
        if loss is None or math.isfinite(loss):
            return
        trainer.stop_training = True
        kept = f"the last good checkpoint is epoch {trainer.epoch}" if trainer.epoch else "no epoch finished"
        trainer.stop_reason = (
            f"loss became {loss} in epoch {trainer.epoch + 1}, batch {logs.get('batch', '?')} "
            f"(lr {logs.get('lr', float('nan')):.3g}): training stopped, {kept}; try a lower learning rate"
        )
        log.error(trainer.stop_reason)
