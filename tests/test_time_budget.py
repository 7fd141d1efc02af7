"""TimeBudget and Trainer.replan: the epochs and the schedule fitted to minutes on any machine."""

from __future__ import annotations

import pytest

from imagefit.errors import OptionError
from imagefit.train.callbacks import Callback, Checkpoint, TimeBudget
from imagefit.train.engine.optim import OptimSpec, make_schedule
from tests._training import tiny_trainer, two_stages

# schedules stepped here without an optimiser step, to read their learning rates
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step:UserWarning")
STEPS = 6  # batches per epoch of the tiny loaders (48 samples, 8 a batch)


class Clock(Callback):
    """A machine on which every training batch takes `cost` seconds (and validation none)."""

    order = -20  # before the budget reads the time

    def __init__(self, cost: float):
        self.cost, self.now = cost, 0.0

    def __call__(self) -> float:
        return self.now

    def on_batch_end(self, trainer, logs):
        self.now += self.cost


def budget_run(minutes: float, cost: float, epochs: int = 3, **kwargs):
    clock = Clock(cost)
    budget = TimeBudget(minutes, probe=2, clock=clock, **kwargs)
    trainer = tiny_trainer([clock, budget], epochs=epochs, optim=OptimSpec("adam", 0.01))
    trainer.fit()
    return trainer, budget, clock


def test_a_budget_trains_as_many_epochs_as_fit_and_more_on_a_faster_machine():
    trainer, budget, clock = budget_run(1, cost=1.0)  # 6 s an epoch, 60 s
    assert len(trainer.history) == 10 and clock.now == pytest.approx(60)
    assert budget.seconds_per_epoch == pytest.approx(6)
    faster, _, fast_clock = budget_run(1, cost=0.5)
    slower, _, slow_clock = budget_run(1, cost=2.0)
    assert (len(faster.history), len(slower.history)) == (20, 5)
    assert fast_clock.now <= 60 and slow_clock.now <= 60


def test_the_schedule_is_stretched_to_the_plan_and_ends_where_a_planned_one_ends():
    trainer, budget, _ = budget_run(1, cost=1.0, epochs=2)
    assert budget.plans[0] == 9 and budget.plans[-1] == 10  # probe's guess, then the measured epochs
    lr = OptimSpec("adam", 0.01)
    final = make_schedule(lr)(_optimizer(), 10 * STEPS)  # one planned from the start for 10 epochs
    for _ in range(10 * STEPS - 1):
        final.step()
    assert trainer.history[-1]["lr"] == pytest.approx(final.get_last_lr()[0], rel=1e-6)
    peak = max(row["lr"] for row in trainer.history)
    assert peak == pytest.approx(0.01, rel=0.05)  # the one-cycle peak was reached, not cut short


class DearerClock(Clock):
    """Batches that cost 1 s, then 3 s from the 4th (a loss on unlabelled images after its warm-up)."""

    def on_batch_end(self, trainer, logs):
        self.now += 1.0 if trainer.epoch == 0 and logs["batch"] < 3 else 3.0


def test_a_step_grown_dearer_within_the_epoch_shortens_the_plan_and_the_schedule_still_ends():
    clock = DearerClock(0)
    trainer = tiny_trainer([clock, TimeBudget(0.3, probe=2, clock=clock)], epochs=3)  # 18 s
    trainer.fit()
    assert len(trainer.history) == 1 and clock.now == pytest.approx(12)
    one = make_schedule(OptimSpec("adam", 0.01))(_optimizer(), STEPS)  # as if planned for 1 epoch
    for _ in range(STEPS - 1):
        one.step()
    assert trainer.history[-1]["lr"] == pytest.approx(one.get_last_lr()[0], rel=1e-6)  # annealed in time


def test_max_epochs_caps_the_plan_and_a_budget_shorter_than_an_epoch_trains_one():
    trainer, _, _ = budget_run(1, cost=1.0, max_epochs=4)
    assert len(trainer.history) == 4
    short, _, _ = budget_run(0.05, cost=1.0)  # 3 s: less than an epoch
    assert len(short.history) == 1


def test_replan_keeps_the_lr_of_the_step_reached_in_a_schedule_of_the_new_length():
    trainer = tiny_trainer(epochs=2)
    trainer._enter_stage()
    for _ in range(4):
        trainer.scheduler.step()
    trainer.replan(5)
    assert trainer.total_epochs == 5
    fresh = make_schedule(trainer.optim)(_optimizer(), 5 * STEPS)
    for _ in range(4):
        fresh.step()
    assert trainer.scheduler.last_epoch == 4
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(fresh.get_last_lr()[0])


def test_replan_scales_the_stages_to_come():
    trainer = tiny_trainer(stages=two_stages())  # head 2 + all 2
    trainer.replan(8)
    assert [s.epochs for s in trainer.stages] == [4, 4]
    trainer.replan(2)
    assert [s.epochs for s in trainer.stages] == [1, 1]


def test_a_budgeted_run_resumes_with_its_plan(tmp_path):
    clock = Clock(1.0)
    run = tmp_path / "run"
    trainer = tiny_trainer([clock, TimeBudget(0.5, probe=2, clock=clock), Checkpoint(run)], epochs=2)
    trainer.fit()
    assert len(trainer.history) == 5
    resumed = tiny_trainer([Checkpoint(run)], epochs=2).resume(run)
    assert resumed.total_epochs == 5 and resumed.epoch == 5


def test_validation_reports_the_mean_iou_when_asked():
    trainer = tiny_trainer(epochs=2, miou_classes=2)
    history = trainer.fit()
    assert "val_miou" in history[0] and 0.5 < history[-1]["val_miou"] <= history[-1]["val_acc"] + 1e-9


@pytest.mark.parametrize("minutes", [0, -1, float("nan"), "10"])
def test_a_budget_must_be_positive_minutes(minutes):
    with pytest.raises(OptionError, match="--budget"):
        TimeBudget(minutes)


def _optimizer():
    import torch

    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)


def test_the_cpu_clock_counts_this_process_work_over_its_threads():
    import time

    import torch

    from imagefit.maps.training.options import MapTrainOptions
    from imagefit.train.callbacks.time_budget import CLOCKS

    cpu, wall = CLOCKS["cpu"](), time.monotonic()
    time.sleep(0.3)  # waiting is not work
    assert CLOCKS["cpu"]() - cpu < 0.1
    x = torch.randn(300, 300)
    while time.monotonic() - wall < 0.6:
        x = torch.tanh(x @ x / 300)
    assert CLOCKS["cpu"]() - cpu > 0.01
    with pytest.raises(OptionError, match="--budget-clock"):
        MapTrainOptions(model="unet", budget=5, budget_clock="gpu")
