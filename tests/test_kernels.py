"""imagefit kernels: first-layer filters and feature maps, as arrays and as pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import timm
import torch
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.explain.kernels import feature_maps, first_conv, kernel_grid
from tests.conftest import TINY_MODEL, write_image


def test_kernel_grid_is_each_filter_scaled_to_unit_range() -> None:
    conv = torch.nn.Conv2d(3, 4, 5)
    grid = kernel_grid(conv)
    assert grid.shape == (4, 5, 5, 3)
    assert np.allclose(grid.min(axis=(1, 2, 3)), 0) and np.allclose(grid.max(axis=(1, 2, 3)), 1)
    w = conv.weight.detach().numpy()[1]
    np.testing.assert_allclose(
        grid[1], np.transpose((w - w.min()) / (w.max() - w.min()), (1, 2, 0)), atol=1e-6
    )


def test_first_conv_and_feature_maps_of_a_timm_model(tmp_path: Path) -> None:
    model = timm.create_model(TINY_MODEL)
    name, conv = first_conv(model)
    assert name == "conv_stem"
    image = write_image(tmp_path / "x.png", (200, 30, 30), seed=3, size=(64, 64))
    config = {
        "input_size": (3, 64, 64),
        "interpolation": "bilinear",
        "mean": (0.5,) * 3,
        "std": (0.5,) * 3,
        "crop_pct": 1.0,
        "crop_mode": "center",
    }
    maps = feature_maps(model, config, image, "conv_stem")
    assert maps.shape == (conv.out_channels, 32, 32)


def test_cli_writes_both_pictures_and_rejects_unknown_layers(tmp_path: Path) -> None:
    image = write_image(tmp_path / "x.jpg", (30, 30, 200), seed=4)
    result = CliRunner().invoke(
        cli, ["kernels", TINY_MODEL, "--weights", "none", "--image", str(image), "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kernels.png").stat().st_size > 1000
    assert (tmp_path / "feature_maps.png").stat().st_size > 1000
    bad = CliRunner().invoke(
        cli, ["kernels", TINY_MODEL, "--image", str(image), "--layer", "nope", "-o", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "no layer 'nope'" in bad.output
