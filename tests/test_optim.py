"""Optimisers and learning-rate schedules: the right kinds, the right curves, clear errors."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch

from imagefit.errors import OptionError
from imagefit.train.engine.optim import OptimSpec, make_optimizer, make_schedule


def params() -> list[torch.nn.Parameter]:
    return list(torch.nn.Linear(3, 2).parameters())


@pytest.mark.parametrize(
    ("name", "kind", "key", "value"),
    [
        ("sgd", torch.optim.SGD, "momentum", 0.8),
        ("SGD", torch.optim.SGD, "weight_decay", 0.01),
        ("adam", torch.optim.Adam, "weight_decay", 0.01),
        ("adamw", torch.optim.AdamW, "weight_decay", 0.01),
        ("rmsprop", torch.optim.RMSprop, "momentum", 0.8),
    ],
)
def test_make_optimizer_builds_each_kind_with_its_settings(name, kind, key, value):
    optimizer = make_optimizer(OptimSpec(name, weight_decay=0.01, momentum=0.8), params(), lr=0.05)
    assert type(optimizer) is kind
    assert optimizer.param_groups[0]["lr"] == 0.05 and optimizer.param_groups[0][key] == value


def test_parameter_groups_keep_their_own_learning_rates():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    groups = [{"params": a.parameters(), "lr": 0.001}, {"params": b.parameters()}]
    optimizer = make_optimizer(OptimSpec("sgd"), groups, lr=0.1)
    assert [g["lr"] for g in optimizer.param_groups] == [0.001, 0.1]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"name": "adagrad"}, "unknown optimizer 'adagrad': choose one of sgd, adam, adamw, rmsprop"),
        ({"lr": 0}, "--lr must be a positive number, got 0"),
        ({"lr": -0.1}, "--lr must be a positive number"),
        ({"lr": math.nan}, "--lr must be a positive number"),
        ({"momentum": 1.0}, "--momentum must be in"),
        ({"weight_decay": -1}, "--weight-decay must be 0 or more"),
    ],
)
def test_bad_optimiser_settings_fail_with_one_line(kwargs, words):
    with pytest.raises(OptionError, match=words):
        OptimSpec(**kwargs)


def test_bad_schedules_fail():
    with pytest.raises(OptionError, match="unknown schedule 'step'"):
        OptimSpec(schedule="step")
    with pytest.raises(OptionError, match="--warmup must be a share"):
        OptimSpec(schedule="cosine", warmup=1.5)
    with pytest.raises(OptionError, match="unknown schedule"):
        OptimSpec(schedule="linear")


def lrs(schedule: str, warmup: float | None, steps: int, base=(0.1,)) -> list[list[float]]:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in base]
    optimizer = torch.optim.SGD(groups, lr=base[0])
    scheduler = make_schedule(OptimSpec(schedule=schedule, warmup=warmup))(optimizer, steps)
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return seen


def test_onecycle_warms_up_to_the_peak_then_anneals_far_below_it():
    seen = [row[0] for row in lrs("onecycle", 0.25, 100)]
    assert seen[0] == pytest.approx(0.1 / 25)
    assert max(seen) == pytest.approx(0.1) and seen.index(max(seen)) == 25
    assert all(a <= b for a, b in pairwise(seen[:26]))
    assert all(a >= b for a, b in pairwise(seen[25:]))
    assert seen[-1] < 0.1 / 1000


def test_cosine_with_warmup_and_constant():
    seen = [row[0] for row in lrs("cosine", 0.1, 50)]
    assert seen[0] == pytest.approx(0.1 / 6) and seen[4] == pytest.approx(0.1 * 5 / 6)
    assert seen[5] == pytest.approx(0.1)
    assert seen[5 + 45 // 2] == pytest.approx(0.05, rel=0.05)  # half way down the cosine
    assert 0 < seen[-1] < 0.001
    assert [row[0] for row in lrs("constant", None, 5)] == [0.1] * 5


def test_schedules_keep_the_ratios_of_discriminative_learning_rates():
    for row in lrs("onecycle", None, 20, base=(0.1, 0.01)):
        assert row[1] == pytest.approx(row[0] / 10)


def test_a_schedule_of_one_or_two_steps_does_not_break():
    assert len(lrs("onecycle", 0.5, 1)) == 1
    assert all(lr > 0 for row in lrs("onecycle", 0.5, 2) for lr in row)
