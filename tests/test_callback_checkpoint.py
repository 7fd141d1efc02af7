"""Checkpoints: best by val_loss and last, each written atomically, safetensors + JSON only."""

from __future__ import annotations

import pytest
import torch

from imagefit.runs.folder import BEST, LAST
from imagefit.train.callbacks import Checkpoint, load_weights
from imagefit.train.engine import state
from imagefit.train.engine.state import load_state
from tests._training import StubTrainer, tiny_trainer


def set_weight(trainer: StubTrainer, value: float) -> None:
    with torch.no_grad():
        trainer.model.weight.fill_(value)


def test_best_follows_the_lowest_val_loss_and_last_every_epoch(tmp_path):
    checkpoint, trainer = Checkpoint(tmp_path), StubTrainer()
    checkpoint.on_train_begin(trainer, {})
    for epoch, val_loss in enumerate([0.9, 0.5, 0.7, 0.4, 0.4], start=1):
        set_weight(trainer, epoch)
        trainer.end_epoch(checkpoint, val_loss=val_loss)
        best = load_state(tmp_path / BEST)["meta"]
        assert best["epoch"] == {1: 1, 2: 2, 3: 2, 4: 4, 5: 4}[epoch]  # a tie is no improvement
        assert load_state(tmp_path / LAST)["position"]["epoch"] == epoch
    model = torch.nn.Linear(2, 2)
    meta = load_weights(tmp_path / BEST, model)
    assert meta == {"epoch": 4, "stage": "train", "monitor": "val_loss", "value": 0.4}
    assert torch.all(model.weight == 4)
    load_weights(tmp_path / LAST, model)
    assert torch.all(model.weight == 5)


def test_without_validation_the_training_loss_decides(tmp_path):
    checkpoint, trainer = Checkpoint(tmp_path), StubTrainer()
    for loss in (0.8, 0.3, 0.6):
        trainer.end_epoch(checkpoint, loss=loss, val_loss=None)
    assert load_state(tmp_path / BEST)["meta"] == {
        "epoch": 2,
        "stage": "train",
        "monitor": "loss",
        "value": 0.3,
    }


def test_an_accuracy_monitor_keeps_the_highest(tmp_path):
    checkpoint, trainer = Checkpoint(tmp_path, monitor="val_acc"), StubTrainer()
    for acc in (0.5, 0.9, 0.7):
        trainer.end_epoch(checkpoint, val_loss=1.0, val_acc=acc)
    assert load_state(tmp_path / BEST)["meta"]["epoch"] == 2


def test_a_crash_while_writing_keeps_the_previous_checkpoints(tmp_path, monkeypatch):
    checkpoint, trainer = Checkpoint(tmp_path), StubTrainer()
    set_weight(trainer, 1)
    trainer.end_epoch(checkpoint, val_loss=0.5)

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(state, "save_file", crash)
    set_weight(trainer, 2)
    with pytest.raises(KeyboardInterrupt):
        trainer.end_epoch(checkpoint, val_loss=0.1)
    assert load_state(tmp_path / LAST)["position"]["epoch"] == 1
    model = torch.nn.Linear(2, 2)
    assert load_weights(tmp_path / BEST, model)["epoch"] == 1 and torch.all(model.weight == 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [BEST, LAST]  # no temporary files left


def test_checkpoints_of_a_real_run_hold_all_state_without_pickle(tmp_path):
    trainer = tiny_trainer([Checkpoint(tmp_path)], epochs=2)
    trainer.fit()
    state = load_state(tmp_path / LAST)
    assert set(state) == {"model", "optimizer", "scheduler", "scaler", "rng", "history", "stages", "position"}
    assert state["position"] == {
        "epoch": 2,
        "stage_index": 0,
        "stage_epoch": 2,
        "stop_stage": False,
        "stop_training": False,
    }
    assert state["scheduler"]["last_epoch"] == 12  # 2 epochs x 6 batches
    assert torch.equal(state["model"]["head.weight"], trainer.model.head.weight.detach())
    for name in (BEST, LAST):
        assert (
            b"pickle" not in (tmp_path / name).read_bytes()[:8]
            and (tmp_path / name).read_bytes()[8:9] == b"{"
        )
