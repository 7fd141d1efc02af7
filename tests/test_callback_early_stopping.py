"""Early stopping: patience and min_delta as Keras counts them, per run or per stage."""

from __future__ import annotations

import pytest

from imagefit.errors import OptionError
from imagefit.train.callbacks import EarlyStopping
from imagefit.train.engine.stages import Stage, prefix_groups
from tests._training import StubTrainer, tiny_trainer


def stopped_after(callback: EarlyStopping, values: list[float], key: str = "val_loss") -> int | None:
    trainer = StubTrainer()
    for value in values:
        trainer.end_epoch(callback, **{key: value})
        if trainer.stop_training:
            return trainer.epoch
    return None


def test_stops_after_patience_epochs_without_improvement():
    assert stopped_after(EarlyStopping(patience=2), [1.0, 0.8, 0.9, 0.85, 0.7]) == 4
    assert stopped_after(EarlyStopping(patience=3), [1.0, 0.8, 0.9, 0.85, 0.7, 0.75]) is None


def test_improvements_smaller_than_min_delta_do_not_count():
    values = [1.0, 0.95, 0.92, 0.91]
    assert stopped_after(EarlyStopping(patience=2, min_delta=0.1), values) == 3
    assert stopped_after(EarlyStopping(patience=2, min_delta=0.01), values) is None


def test_accuracy_is_maximised():
    assert stopped_after(EarlyStopping("val_acc", patience=1), [0.5, 0.7, 0.6], key="val_acc") == 3
    assert stopped_after(EarlyStopping("val_acc", patience=1), [0.5, 0.7, 0.8], key="val_acc") is None


def test_the_decision_is_recomputed_from_history_so_resuming_changes_nothing():
    callback = EarlyStopping(patience=2)
    assert callback.epochs_without_improvement([{"val_loss": v} for v in (1.0, 0.5, 0.6, 0.7)]) == 2
    fresh = EarlyStopping(patience=2)  # as after a resume: a new object, the same history
    trainer = StubTrainer()
    trainer.history = [{"epoch": e, "stage": "train", "val_loss": v} for e, v in ((1, 1.0), (2, 0.5))]
    trainer.epoch = 2
    trainer.end_epoch(fresh, val_loss=0.6)
    assert not trainer.stop_training
    trainer.end_epoch(fresh, val_loss=0.7)
    assert trainer.stop_training and trainer.stop_reason == "early stopping"


def test_stage_scope_ends_only_the_stage():
    class Worse(EarlyStopping):
        """Sees a val_loss that never improves after the first epoch of each stage."""

        def on_epoch_end(self, trainer, logs):
            rows = [r for r in trainer.history if r["stage"] == logs["stage"]]
            for i, row in enumerate(rows):
                row["val_loss"] = 1.0 + i
            super().on_epoch_end(trainer, logs)

    stages = [Stage("head", 4, 0.01, prefix_groups(("head", 1.0))), Stage("all", 3, 0.01)]
    trainer = tiny_trainer([Worse(patience=1, scope="stage")], stages=stages)
    history = trainer.fit()
    assert [row["stage"] for row in history] == ["head", "head", "all", "all"]  # not 4 + 3 epochs
    assert not trainer.stop_training and trainer.stop_reason is None


def test_bad_settings_are_refused():
    with pytest.raises(OptionError, match="--patience must be at least 1"):
        EarlyStopping(patience=0)
    with pytest.raises(OptionError, match="scope"):
        EarlyStopping(scope="epoch")
