"""evaluate --unknown: calibration error, accuracy against coverage, and unknown images told apart."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from imagefit.cli import cli
from imagefit.evaluate.trust_metrics import (
    calibration_errors,
    coverage_curve,
    fpr_at_recall,
    ood_auroc,
    uncalibrated,
)
from imagefit.runs import read_config
from tests.conftest import TINY, make_folder, write_image

GREYS = {"grey": (128, 128, 128), "white": (245, 245, 245)}  # colours the runs never saw


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Data, a run on it (calibrated, with a familiarity), and a copy saved as before familiarity."""
    root = tmp_path_factory.mktemp("unknown")
    data = make_folder(root / "data", n_train=8, n_valid=6)
    result = CliRunner().invoke(cli, ["train", str(data), "--out", str(root / "run"), *TINY])
    assert result.exit_code == 0, result.output
    old = root / "old"
    old.mkdir()
    for name in ("model.safetensors", "config.json"):
        shutil.copy(root / "run" / name, old / name)
    config = json.loads((old / "config.json").read_text())
    del config["calibration"], config["familiarity"]
    (old / "config.json").write_text(json.dumps(config))
    return data, root / "run", old


def unknown_folder(root: Path, n: int = 5) -> Path:
    """Grey and white images, and plain noise, one folder deep: no colour of the training classes."""
    for i in range(n):
        name, colour = list(GREYS.items())[i % 2]
        write_image(root / name / f"{name}_{i}.png", colour, seed=100 + i)
    noise = np.random.default_rng(7).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "noise.jpg")
    return root


def evaluate(*args: str | Path):
    return CliRunner().invoke(cli, ["evaluate", *map(str, args), "--engine", "torch", "-j", "0"])


def test_evaluate_unknown_writes_the_scores_from_the_images(runs, tmp_path: Path) -> None:
    data, run, _ = runs
    strangers = unknown_folder(tmp_path / "strangers")
    result = evaluate(run, data, "--out", tmp_path / "ev", "--unknown", strangers)
    assert result.exit_code == 0, result.output
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert ev["n_unknown"] == 6 and ev["unknown"] == str(strangers)  # five below it and the noise
    assert 0 <= ev["ood_auroc"] <= 1 and 0 <= ev["ood_fpr_at_95tpr"] <= 1
    assert ev["ood_unknown_share"] in {k / 6 for k in range(7)}  # a share of six images
    assert ev["known_unknown_share"] in {k / 12 for k in range(13)}  # of the twelve evaluated
    assert ev["familiarity_threshold"] == pytest.approx(read_config(run).familiarity["threshold"])
    with (tmp_path / "ev" / "predictions.csv").open() as f:
        known = np.array([float(row["familiarity"]) for row in csv.DictReader(f)])
    assert ev["known_unknown_share"] == pytest.approx(np.mean(known < ev["familiarity_threshold"]))
    assert "unknown images: auroc" in result.output
    for name in ("reliability.png", "coverage.png", "familiarity.png"):
        assert (tmp_path / "ev" / name).stat().st_size > 1000


def test_every_single_label_evaluation_measures_calibration(runs, tmp_path: Path) -> None:
    data, run, old = runs
    result = evaluate(run, data, "--out", tmp_path / "ev")
    assert result.exit_code == 0, result.output
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert 0 <= ev["ece"] <= 1 and 0 <= ev["ece_uncalibrated"] <= 1 and "ood_auroc" not in ev
    assert ev["coverage_by"] == "familiarity" and "known_unknown_share" in ev
    if abs(read_config(run).calibration["temperature"] - 1) > 1e-3:
        assert ev["ece"] != pytest.approx(ev["ece_uncalibrated"], abs=1e-9)
    result = evaluate(old, data, "--out", tmp_path / "old")
    assert result.exit_code == 0, result.output
    ev = json.loads((tmp_path / "old" / "evaluation.json").read_text())
    assert ev["ece"] == ev["ece_uncalibrated"] and "known_unknown_share" not in ev
    assert ev["coverage_by"] == "calibrated top probability"
    training = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert 0 <= training["ece"] <= 1 and "known_unknown_share" in training  # the run's own report


def test_the_report_draws_reliability_coverage_and_familiarity(runs, tmp_path: Path) -> None:
    data, run, _ = runs
    strangers = unknown_folder(tmp_path / "strangers")
    assert evaluate(run, data, "--out", tmp_path / "ev", "--unknown", strangers).exit_code == 0
    page = (tmp_path / "ev" / "report.html").read_text()
    assert '<section id="trust">' in page and 'href="#trust"' in page
    for alt in (
        "reliability diagram",
        "accuracy against coverage",
        "familiarity of known and unknown images",
    ):
        assert f'<img alt="{alt}" src="data:image/png;base64,' in page
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert f'data-value="{ev["ood_auroc"]!r}"' in page and f'data-value="{ev["ece"]!r}"' in page


@pytest.mark.parametrize("case", ["missing", "empty", "not images", "undecodable"])
def test_a_bad_unknown_folder_is_named(runs, tmp_path: Path, case: str) -> None:
    data, run, _ = runs
    folder = tmp_path / "strangers"
    if case != "missing":
        folder.mkdir()
    if case == "not images":
        (folder / "notes.txt").write_text("no pictures here")
    if case == "undecodable":
        (folder / "a.jpg").write_bytes(b"not a jpeg at all")
        (folder / "b.png").write_bytes(b"")
    result = evaluate(run, data, "--out", tmp_path / "ev", "--unknown", folder)
    assert result.exit_code == 2, result.output
    assert str(folder) in result.output and "--unknown" in result.output
    reason = {"missing": "does not exist", "empty": "holds no image", "not images": "holds no image"}
    assert reason.get(case, "could be read") in result.output
    assert not (tmp_path / "ev" / "evaluation.json").exists()


def test_a_run_without_familiarity_refuses_unknown(runs, tmp_path: Path) -> None:
    data, _, old = runs
    strangers = unknown_folder(tmp_path / "strangers")
    result = evaluate(old, data, "--out", tmp_path / "ev", "--unknown", strangers)
    assert result.exit_code == 2, result.output
    assert "without a familiarity" in result.output and "retrain" in result.output


def test_coverage_keeps_the_surest_first() -> None:
    scores = np.array([0.9, 0.2, 0.8, 0.5])
    correct = np.array([1, 0, 0, 1])
    coverage, accuracy = coverage_curve(scores, correct)
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert accuracy.tolist() == [1.0, 0.5, 2 / 3, 0.5]  # kept: 0.9, 0.8, 0.5, then 0.2


def test_auroc_and_fpr_of_hand_made_familiarity() -> None:
    known = np.linspace(0.05, 1.0, 20)  # its 5th percentile: 0.0975
    assert ood_auroc(known, np.array([0.01, 0.02])) == 1.0
    assert ood_auroc(known, np.array([2.0])) == 0.0
    assert ood_auroc(np.array([0.3, 0.7]), np.array([0.5])) == 0.5
    assert fpr_at_recall(known, np.array([0.0, 0.05, 0.1, 0.5])) == 0.5  # 0.1 and 0.5 let through
    assert fpr_at_recall(np.full(10, 0.3), np.array([0.3, 0.2])) == 0.5  # at the cut counts


def test_ece_before_calibration_undoes_the_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (500, 3))
    probs = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(1, keepdims=True)
    raw = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.allclose(uncalibrated(probs, 2.0), raw)
    y = rng.integers(0, 3, 500)
    errors = calibration_errors(probs, y, 2.0)
    assert errors["ece_uncalibrated"] > errors["ece"]  # random labels: the sharper, the worse
    assert calibration_errors(probs, y, None)["ece_uncalibrated"] == errors["ece"]
