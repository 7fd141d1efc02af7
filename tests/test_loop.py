"""The Trainer: repeatable with a seed, resumable to the same weights, stages that freeze what they should."""

from __future__ import annotations

import pytest
import torch

from imagefit.errors import ModelError, OptionError
from imagefit.runs import read_history
from imagefit.train.callbacks import Callback, Checkpoint, HistoryCSV
from imagefit.train.engine.optim import OptimSpec
from imagefit.train.engine.stages import Stage, prefix_groups
from imagefit.train.engine.trainer import Trainer, find_checkpoint
from tests._training import (
    InterruptAt,
    max_difference,
    tiny_loaders,
    tiny_trainer,
    two_stages,
    weights,
    without_seconds,
)


def test_fit_learns_and_returns_one_history_row_per_epoch():
    trainer = tiny_trainer(epochs=4)
    history = trainer.fit()
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert set(history[0]) == {"epoch", "stage", "lr", "loss", "acc", "val_loss", "val_acc", "seconds"}
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_acc"] >= 0.9  # the classes differ by their mean: easy
    assert trainer.evaluate(trainer.valid_data)["acc"] == pytest.approx(history[-1]["val_acc"])


def test_the_same_seed_gives_the_same_history_and_weights():
    a, b = tiny_trainer(seed=5), tiny_trainer(seed=5)
    assert without_seconds(a.fit()) == without_seconds(b.fit())
    assert max_difference(weights(a), weights(b)) == 0.0
    c = tiny_trainer(seed=6)
    assert without_seconds(c.fit()) != without_seconds(a.history)


@pytest.mark.parametrize("interrupt_at", [(2, 1), (3, 0), (4, 4)])
def test_a_run_interrupted_and_resumed_ends_with_the_same_weights(tmp_path, interrupt_at):
    """Ctrl-C in epoch 2, 3 or 4 of a two-stage run; resuming reaches the uninterrupted weights."""
    straight = tiny_trainer(stages=two_stages())
    straight.fit()
    run = tmp_path / "run"
    first = tiny_trainer(
        [Checkpoint(run), HistoryCSV(run / "history.csv"), InterruptAt(*interrupt_at)], two_stages()
    )
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    done = interrupt_at[0] - 1
    assert len(first.history) == done and len(read_history(run / "history.csv")) == done
    resumed = tiny_trainer([Checkpoint(run), HistoryCSV(run / "history.csv")], two_stages(), seed=99)
    resumed.resume(run)
    position = (resumed.epoch, resumed.stage.name, resumed.stage_epoch)
    assert position == {1: (1, "head", 1), 2: (2, "head", 2), 3: (3, "all", 1)}[done]
    history = resumed.fit()
    assert max_difference(weights(resumed), weights(straight)) < 1e-6
    assert without_seconds(history) == without_seconds(straight.history)
    assert [row["stage"] for row in read_history(run / "history.csv")] == ["head", "head", "all", "all"]


def test_resume_after_a_clean_stop_at_an_epoch_end(tmp_path):
    class StopAfterFirst(Callback):
        def on_epoch_end(self, trainer, logs):
            trainer.stop_training = logs["epoch"] == 1

    straight = tiny_trainer(optim=OptimSpec("sgd", 0.05, momentum=0.9, schedule="cosine"))
    straight.fit()
    first = tiny_trainer(
        [StopAfterFirst(), Checkpoint(tmp_path)], optim=OptimSpec("sgd", 0.05, schedule="cosine")
    )
    first.fit()
    assert first.epoch == 1
    resumed = tiny_trainer([Checkpoint(tmp_path)], optim=OptimSpec("sgd", 0.05, schedule="cosine"))
    resumed.resume(tmp_path / "last.safetensors")
    resumed.stop_training = False  # the stop was this test's, not the run's
    resumed.fit()
    assert max_difference(weights(resumed), weights(straight)) < 1e-6


def test_a_finished_run_resumes_to_nothing_more(tmp_path):
    first = tiny_trainer([Checkpoint(tmp_path)], epochs=2)
    first.fit()
    again = tiny_trainer([Checkpoint(tmp_path)], epochs=2).resume(tmp_path)
    assert len(again.fit()) == 2 and max_difference(weights(again), weights(first)) == 0.0


def test_resume_refuses_other_stages_and_missing_checkpoints(tmp_path):
    tiny_trainer([Checkpoint(tmp_path)], epochs=1).fit()
    with pytest.raises(ModelError, match="has stages"):
        tiny_trainer(stages=two_stages()).resume(tmp_path)
    with pytest.raises(ModelError, match="no checkpoint in"):
        find_checkpoint(tmp_path / "elsewhere")


def test_a_frozen_stage_moves_neither_weights_nor_batchnorm_statistics():
    trainer = tiny_trainer(stages=[Stage("head", 2, 0.01, prefix_groups(("head", 1.0)))])
    before = weights(trainer)
    trainer.fit()
    after = weights(trainer)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}  # running_mean/var of features.1 included
    assert not any(p.requires_grad for p in trainer.model.features.parameters())


def test_unfrozen_batchnorm_statistics_do_move():
    trainer = tiny_trainer(epochs=1)
    before = trainer.model.features[2].running_mean.clone()
    trainer.fit()
    assert not torch.equal(before, trainer.model.features[2].running_mean)


def test_discriminative_learning_rates_per_parameter_group():
    trainer = tiny_trainer(stages=two_stages(lr=0.02), optim=OptimSpec("adam", 0.02, schedule="constant"))
    trainer.fit()
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([0.002, 0.02])
    body = {id(p) for p in trainer.model.features.parameters()} | {
        id(p) for p in trainer.model.pre_logits.parameters()
    }
    assert {id(p) for p in groups[0]["params"]} == body
    assert trainer.history[-1]["lr"] == pytest.approx(0.02)  # the largest group's rate is logged


def test_bad_settings_fail_before_training():
    train, valid = tiny_loaders()
    model = torch.nn.Linear(1, 2)
    with pytest.raises(OptionError, match="unknown precision"):
        Trainer(model, train, valid, precision="fp8")
    with pytest.raises(OptionError, match="distinct names"):
        Trainer(model, train, valid, stages=[Stage("a", 1), Stage("a", 2)])
    with pytest.raises(OptionError, match="stage 'a' has no learning rate"):
        Trainer(model, train, valid, optim=OptimSpec(lr=None), stages=[Stage("a", 1)])
    empty = Stage("none", 1, trainable=lambda m: [])
    with pytest.raises(OptionError, match="trains no parameters"):
        tiny_trainer(stages=[empty])  # before any training


def test_cpu_training_uses_no_mixed_precision():
    trainer = tiny_trainer(precision="bf16", device="cpu")
    assert trainer.amp_dtype is None and trainer.scaler is None and not trainer.channels_last
