"""A NaN loss stops training with a message, and the last good checkpoint stays."""

from __future__ import annotations

import pytest
import torch

from imagefit.runs import read_history
from imagefit.runs.folder import LAST
from imagefit.train.callbacks import Checkpoint, HistoryCSV, NaNGuard, load_weights
from tests._training import tiny_trainer, weights


class PoisonedLoss(torch.nn.Module):
    """Cross-entropy that turns NaN from training call `at` on (validation calls are not counted)."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, out, y):
        loss = torch.nn.functional.cross_entropy(out, y)
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls >= self.at:
                return loss * float("nan")
        return loss


def test_nan_stops_in_the_broken_epoch_and_keeps_the_last_good_checkpoint(tmp_path, caplog):
    # 6 batches per epoch: batch 3 of epoch 2 is training call 9
    trainer = tiny_trainer(
        [NaNGuard(), Checkpoint(tmp_path), HistoryCSV(tmp_path / "h.csv")], epochs=4, loss=PoisonedLoss(9)
    )
    good = {}

    class Remember:
        def on_epoch_end(self, t, logs):
            good.update(weights(t))

    trainer.callbacks.insert(0, Remember())
    history = trainer.fit()
    assert len(history) == 1 and trainer.epoch == 1 and trainer.stop_training
    assert "loss became nan in epoch 2, batch 2" in trainer.stop_reason
    assert (
        "last good checkpoint is epoch 1" in trainer.stop_reason
        and "lower learning rate" in trainer.stop_reason
    )
    assert trainer.stop_reason in caplog.text
    assert [r["epoch"] for r in read_history(tmp_path / "h.csv")] == [1]
    model = type(trainer.model)("conv4@3-bn-pool2-drop0.3-dense8-drop0.2", 1, 2, 12)
    meta = load_weights(tmp_path / LAST, model)
    assert meta["epoch"] == 1
    saved = model.state_dict()
    assert all(torch.isfinite(v.float()).all() for v in saved.values())
    assert all(torch.equal(saved[k], good[k]) for k in good)


def test_finite_losses_pass():
    trainer = tiny_trainer([NaNGuard()], epochs=1)
    assert len(trainer.fit()) == 1 and trainer.stop_reason is None


def test_infinite_loss_stops_too():
    class Stub:
        epoch, stop_training, stop_reason = 0, False, None

    stub = Stub()
    NaNGuard().on_batch_end(stub, {"batch": 0, "batch_loss": float("inf"), "loss": float("inf"), "lr": 0.1})
    assert stub.stop_training and "loss became inf in epoch 1, batch 0" in stub.stop_reason
    assert "no epoch finished" in stub.stop_reason


@pytest.mark.parametrize("value", [0.0, 1e30])
def test_large_but_finite_losses_do_not_stop(value):
    class Stub:
        epoch, stop_training, stop_reason = 3, False, None

    stub = Stub()
    NaNGuard().on_batch_end(stub, {"batch": 0, "batch_loss": value})
    assert not stub.stop_training
