"""imagefit summary: layers, output shapes and parameter totals that agree with the model."""

from __future__ import annotations

import timm
import torch
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.explain import summarize
from tests.conftest import TINY_MODEL


def test_totals_equal_the_model_and_rows_add_up() -> None:
    model = timm.create_model("tf_efficientnet_lite0")
    summary = summarize(model, (3, 224, 224))
    assert summary.total == sum(p.numel() for p in model.parameters()) == 4_652_008
    assert sum(r.params for r in summary.rows) == summary.total
    assert summary.rows[0].name == "conv_stem" and summary.rows[0].output_shape == (None, 32, 112, 112)
    assert summary.rows[-1].name == "classifier" and summary.rows[-1].output_shape == (None, 1000)
    assert "stride (2, 2)" in summary.rows[0].detail


def test_frozen_parameters_are_counted_apart() -> None:
    model = timm.create_model(TINY_MODEL)
    for p in model.blocks.parameters():
        p.requires_grad_(False)
    summary = summarize(model, (3, 64, 64))
    frozen = sum(p.numel() for p in model.blocks.parameters())
    assert summary.frozen == frozen > 0
    assert summary.trainable == summary.total - frozen


def test_plain_convolution_arithmetic_is_readable() -> None:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 30, 5),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(30, 15, 3, padding=1),
    )
    rows = summarize(net, (1, 28, 28)).rows
    assert [r.output_shape for r in rows] == [
        (None, 30, 24, 24),
        (None, 30, 24, 24),
        (None, 30, 12, 12),
        (None, 15, 12, 12),
    ]
    assert [r.params for r in rows] == [30 * 25 + 30, 0, 0, 15 * 30 * 9 + 15]
    assert "padding (1, 1)" in rows[3].detail and "kernel 2" in rows[2].detail


def test_cli_summary_prints_the_totals() -> None:
    result = CliRunner().invoke(cli, ["summary", TINY_MODEL, "--image-size", "64"])
    assert result.exit_code == 0, result.output
    total = sum(p.numel() for p in timm.create_model(TINY_MODEL).parameters())
    assert f"Total params: {total:,}" in result.output
    assert "Input shape: (None, 3, 64, 64)" in result.output


def test_larger_model_at_28x28x1_matches_the_hand_calculation() -> None:
    conv1 = 30 * (5 * 5 * 1) + 30
    conv2 = 15 * (3 * 3 * 30) + 15
    dense1 = (15 * 5 * 5) * 128 + 128  # 28 -5+1-> 24 -pool-> 12 -3+1-> 10 -pool-> 5
    dense2 = 128 * 50 + 50
    out = 50 * 10 + 10
    result = CliRunner().invoke(cli, ["summary", "larger_model", "--image-size", "28", "--channels", "1"])
    assert result.exit_code == 0, result.output
    assert f"Total params: {conv1 + conv2 + dense1 + dense2 + out:,}" in result.output
    for count in (conv1, conv2, dense1, dense2, out):
        assert f" {count:,} " in result.output
    assert "(None, 15, 5, 5)" in result.output
