"""Class weights for imbalanced folders: the balanced rule, the weighted loss, the linear head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.errors import OptionError
from imagefit.train.engine.class_weights import balanced_weights, training_loss
from imagefit.train.heads import fit_linear_head
from imagefit.train.options import TrainOptions
from tests.conftest import make_folder


def test_balanced_weights_follow_n_over_k_times_count() -> None:
    weights = balanced_weights([0, 0, 0, 1, 2, 2], 4)
    # n = 6, k = 3 classes present: 6 / (3 * 3), 6 / (3 * 1), 6 / (3 * 2); the empty class gets 0
    assert weights == pytest.approx([2 / 3, 2.0, 1.0, 0.0])
    # each present class then carries the same total weight
    counts = np.array([3, 1, 2])
    assert weights[:3] * counts == pytest.approx([2.0, 2.0, 2.0])


def test_the_weighted_loss_is_the_weighted_mean_of_per_image_losses() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(6, 3), torch.tensor([0, 0, 0, 1, 2, 2])
    loss = training_loss(y.tolist(), 3, balanced=True)(logits, y)
    w = torch.tensor(balanced_weights(y.tolist(), 3), dtype=torch.float32)[y]
    per_image = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert float(loss) == pytest.approx(float((w * per_image).sum() / w.sum()), rel=1e-6)
    assert float(training_loss(y.tolist(), 3)(logits, y)) == pytest.approx(float(per_image.mean()))
    with pytest.raises(OptionError, match="class-weights"):
        TrainOptions(class_weights="inverse")


def test_a_balanced_linear_head_predicts_the_rare_class_more_often() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (180, 4)), rng.normal(0.8, 1, (20, 4))]).astype(np.float32)
    y = np.array([0] * 180 + [1] * 20)
    plain = fit_linear_head(x, y, 2, progress=False)
    balanced = fit_linear_head(x, y, 2, progress=False, balanced=True)
    rare = [int(((x @ h.weight.T + h.bias).argmax(1) == 1).sum()) for h in (plain, balanced)]
    assert rare[1] > rare[0] + 10


def test_cli_scratch_run_records_class_weights_and_augmentation(tmp_path) -> None:
    import json

    data = make_folder(tmp_path / "data", n_train=6, n_valid=2)
    run = tmp_path / "run"
    args = ["train", str(data), "--strategy", "scratch", "--epochs", "1", "-j", "0", "--out", str(run)]
    result = CliRunner().invoke(cli, [*args, "--class-weights", "auto", "--aug", "rotate=10,vflip=0.5"])
    assert result.exit_code == 0, result.output
    options = json.loads((run / "config.json").read_text())["options"]
    assert options["class_weights"] == "auto" and options["augment"] == "rotate=10,vflip=0.5"
    bad = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "other"), "--aug", "spin=3"])
    assert bad.exit_code == 2 and "bad augmentation 'spin=3'" in bad.output
