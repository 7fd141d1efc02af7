"""Multi-label finetune and scratch: binary cross-entropy, positive weights, thresholds on validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import imagefit
from imagefit.runs.history import read_history
from imagefit.train.callbacks.checkpoint import Checkpoint
from imagefit.train.engine.mixing import MixedBatches
from imagefit.train.multilabel.loss import MultiLabelLoss, multilabel_training_loss, positive_weights
from imagefit.train.multilabel.scores import LabelScores, count_label_hits
from imagefit.train.multilabel.thresholds import best_thresholds
from tests._multilabel import LABELS, SETS, VALID, write_table
from tests._training import InterruptAt, without_seconds
from tests.conftest import TINY_MODEL

FINETUNE = {"model": TINY_MODEL, "weights": "none", "engine": "torch", "stages": "head:1:1e-3,all:1:1e-4"}
SCRATCH = {"arch": "conv4@3-pool2-dense8", "epochs": 3}
QUIET = {"workers": 0, "progress": False}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(tmp_path_factory.mktemp("ml-epochs") / "images", test=2)


@pytest.fixture(scope="module")
def runs(table: Path) -> dict:
    out = table.parent.parent
    mixed = {"mixup": 0.4, "label_smoothing": 0.1}
    return {
        "finetune": imagefit.train(table, "finetune", out / "ft", class_weights="auto", **FINETUNE, **QUIET),
        "scratch": imagefit.train(table, "scratch", out / "sc", **mixed, **SCRATCH, **QUIET),
    }


def _valid_truth(classes: list[str]) -> tuple[list[Path], np.ndarray]:
    names = sorted(VALID)
    y = np.array([[int(c in SETS[int(n[2:]) % len(SETS)]) for c in classes] for n in names])
    return names, y


@pytest.mark.parametrize("strategy", ["finetune", "scratch"])
def test_thresholds_are_chosen_on_validation_and_saved_where_linear_saves_them(runs, table, strategy) -> None:
    result = runs[strategy]
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["task"] == "multilabel" and config["classes"] == list(LABELS)
    loaded = imagefit.load(result.run_dir)
    assert loaded.multilabel and loaded.thresholds == pytest.approx(config["thresholds"])
    names, y = _valid_truth(loaded.classes)
    preds = loaded.predict([table.parent / f"{n}.png" for n in names], engine="torch", **QUIET)
    # calibration moved each threshold with its label's probabilities: the same validation decisions
    chosen = preds.probabilities >= np.asarray(config["thresholds"])
    assert (chosen == (preds.probabilities >= best_thresholds(y, preds.probabilities))).all()
    assert result.metrics["valid"]["n"] == 4 and result.metrics["train"]["n"] == 10
    assert 0 <= result.metrics["valid"]["mAP"] <= 1 and "samples_f1" in result.metrics["valid"]


@pytest.mark.parametrize("strategy", ["finetune", "scratch"])
def test_history_speaks_multilabel_and_the_best_epoch_has_the_best_val_map(runs, strategy) -> None:
    result = runs[strategy]
    history = read_history(result.run_dir / "history.csv")
    assert {"val_mAP", "val_samples_f1"} <= set(history[0])
    best = result.metrics["best"]
    assert best["monitor"] == "val_mAP"
    assert best["value"] == pytest.approx(max(row["val_mAP"] for row in history), abs=1e-6)
    tested = (result.run_dir / "test_predictions.csv").read_text().splitlines()
    assert tested[0] == "path,labels,familiarity,unknown,p_blue,p_green,p_red" and len(tested) == 3
    evaluation = json.loads((result.run_dir / "evaluation" / "evaluation.json").read_text())
    assert evaluation["task"] == "multilabel" and evaluation["n"] == 4
    assert 'id="per-label"' in (result.run_dir / "report.html").read_text()


def test_positive_weights_are_negatives_over_positives_clipped() -> None:
    sets = [(0,)] * 50 + [(0, 1)] * 4 + [()] * 46  # label 0 on 54 of 100, label 1 on 4, label 2 on none
    weights = positive_weights(sets, 3)
    assert weights[0] == pytest.approx(46 / 54) and weights[1] == pytest.approx(10.0)  # 96/4 clipped
    assert weights[2] == 1.0
    loss = multilabel_training_loss(sets, 3, balanced=True)
    assert torch.allclose(loss.pos_weight, torch.tensor(weights, dtype=torch.float32))
    assert multilabel_training_loss(sets, 3).pos_weight is None


def test_the_loss_is_binary_cross_entropy_with_weighted_positives_and_smoothing() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.tensor([3.0, 0.5])
    p = logits.sigmoid()
    manual = -(w * target * p.log() + (1 - target) * (1 - p).log()).mean()
    assert float(MultiLabelLoss(w)(logits, target)) == pytest.approx(float(manual), rel=1e-6)
    smooth = target * 0.8 + 0.1
    plain = -(smooth * p.log() + (1 - smooth) * (1 - p).log()).mean()
    assert float(MultiLabelLoss(smoothing=0.2)(logits, target)) == pytest.approx(float(plain), rel=1e-6)


def test_mixup_blends_multi_hot_targets_as_they_are() -> None:
    x = torch.arange(3 * 2, dtype=torch.float32).view(3, 2, 1, 1)
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    (mx, my), = list(MixedBatches([(x, y)], 3, alpha=0.4, seed=1))  # fmt: skip
    lam = float((mx[0, 0] - x[2, 0]) / (x[0, 0] - x[2, 0]))
    assert torch.allclose(my, lam * y + (1 - lam) * y.flip(0), atol=1e-6)


def test_label_hits_and_validation_scores() -> None:
    logits = torch.tensor([[3.0, -2.0, 1.0], [-1.0, 2.0, -3.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert count_label_hits(logits, targets) == pytest.approx(2 / 3 + 1)
    scores = LabelScores()
    scores.add(logits, targets)
    out = scores.result()
    assert out["mAP"] == pytest.approx(1.0) and out["samples_f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert LabelScores().result() == {"mAP": None, "samples_f1": None}
    assert Checkpoint("x", monitor="val_mAP").mode == "max" and Checkpoint("x").mode == "min"


def test_an_interrupted_multilabel_run_resumes_to_the_same_run(table: Path, tmp_path: Path) -> None:
    options = {**SCRATCH, **QUIET, "batch_size": 4, "lr": 0.01, "class_weights": "auto"}
    straight = imagefit.train(table, "scratch", tmp_path / "straight", seed=3, **options)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        imagefit.train(table, "scratch", run, seed=3, callbacks=[InterruptAt(2, 0)], **options)
    resumed = imagefit.resume(run, progress=False, workers=0)
    history = without_seconds(read_history(run / "history.csv"))
    assert history == without_seconds(read_history(straight.run_dir / "history.csv"))
    assert "val_mAP" in history[0] and len(history) == 3
    saved = [json.loads((r / "config.json").read_text()) for r in (run, straight.run_dir)]
    assert saved[0]["thresholds"] == pytest.approx(saved[1]["thresholds"], abs=1e-6)
    assert resumed.metrics["valid"] == pytest.approx(straight.metrics["valid"])
