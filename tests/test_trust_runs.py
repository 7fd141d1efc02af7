"""Trained runs know what they do not know: calibrated, with a familiarity that predict and serve use."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.runs import load, read_config
from imagefit.serve.app import create_app
from imagefit.serve.limits import Limits
from imagefit.serve.model import ServedModel
from tests._serve import jpeg_bytes, post_files, request, running
from tests.conftest import TINY, make_folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Data, and two runs on it with the same seed: calibrated (the default) and not."""
    root = tmp_path_factory.mktemp("trust")
    data = make_folder(root / "data", n_train=8, n_valid=6)
    for name, extra in (("run", []), ("plain", ["--no-calibrate"])):
        result = CliRunner().invoke(cli, ["train", str(data), "--out", str(root / name), *TINY, *extra])
        assert result.exit_code == 0, result.output
    return data, root / "run", root / "plain"


def predict_csv(run: Path, inputs: list[Path], out: Path, *flags: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["predict", str(run), *map(str, inputs), "--csv", str(out), *flags])
    assert result.exit_code == 0, result.output
    with out.open() as f:
        return list(csv.DictReader(f))


def set_threshold(run: Path, threshold: float) -> None:
    path = run / "config.json"
    config = json.loads(path.read_text())
    config["familiarity"]["threshold"] = threshold
    path.write_text(json.dumps(config))


def test_the_run_keeps_its_calibration_and_familiarity(runs) -> None:
    _, run, plain = runs
    config = read_config(run)
    assert config.calibration["temperature"] > 0
    assert set(config.familiarity) >= {"threshold", "recall", "k"} and config.familiarity["recall"] == 0.95
    assert (run / "familiarity.safetensors").is_file()
    trust = json.loads((run / "metrics.json").read_text())["trust"]
    assert 0 <= trust["valid_unknown_share"] <= 0.25  # 12 validation images, 95 % kept known
    assert read_config(plain).calibration == {}


def test_calibration_changes_no_argmax(runs, tmp_path: Path) -> None:
    data, run, plain = runs
    images = sorted((data / "valid").rglob("*.jpg"))
    calibrated = load(run).predict(images, engine="torch", progress=False)
    uncalibrated = load(plain).predict(images, engine="torch", progress=False)
    assert calibrated.labels == uncalibrated.labels
    t = read_config(run).calibration["temperature"]
    if abs(t - 1) > 1e-3:  # the probabilities moved, their order did not
        assert not np.allclose(calibrated.probabilities, uncalibrated.probabilities, atol=1e-4)


def test_predict_writes_familiarity_and_reject_writes_unknown(runs, tmp_path: Path) -> None:
    data, run, _ = runs
    images = sorted((data / "valid").rglob("*.jpg"))[:3]
    for _ in range(2):  # the run loaded with PyTorch, then its cached graph without torch
        rows = predict_csv(run, images, tmp_path / "p.csv")
        assert list(rows[0])[:5] == ["path", "class", "probability", "familiarity", "unknown"]
        assert all(0 < float(r["familiarity"]) <= 1 and r["unknown"] in ("0", "1") for r in rows)
    strict = tmp_path / "strict"
    shutil.copytree(run, strict)
    set_threshold(strict, 2.0)  # nothing is familiar enough: every image unknown
    rows = predict_csv(strict, images, tmp_path / "r.csv", "--reject")
    assert [r["class"] for r in rows] == ["unknown"] * 3 and [r["unknown"] for r in rows] == ["1"] * 3
    rows = predict_csv(strict, images, tmp_path / "k.csv")
    assert {r["class"] for r in rows} <= {"blue", "red"}  # without --reject the class stays


def test_a_run_saved_before_familiarity_still_predicts(runs, tmp_path: Path) -> None:
    data, run, _ = runs
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.safetensors", "config.json"):
        (old / name).write_bytes((run / name).read_bytes())
    config = json.loads((old / "config.json").read_text())
    del config["calibration"], config["familiarity"]
    (old / "config.json").write_text(json.dumps(config))
    images = sorted((data / "valid").rglob("*.jpg"))[:2]
    rows = predict_csv(old, images, tmp_path / "p.csv", "--reject")
    assert list(rows[0])[:3] == ["path", "class", "probability"] and "familiarity" not in rows[0]
    assert {r["class"] for r in rows} <= {"blue", "red"}


def test_serve_answers_familiarity_and_unknown(runs) -> None:
    _, run, _ = runs
    model = ServedModel.from_run(run, engine="torch", max_batch=4)
    with running(create_app(model, Limits())) as (port, _):
        status, _, rows = post_files(port, [("a.jpg", jpeg_bytes((30, 60, 220)), "image/jpeg")])
        assert status == 200
        assert 0 < rows[0]["familiarity"] <= 1 and rows[0]["unknown"] in (0, 1)
        status, _, info = request(port, "GET", "/model")
        assert info["familiarity_threshold"] == pytest.approx(
            read_config(run).familiarity["threshold"], abs=1e-6
        )
    model.classifier.familiarity.threshold = 2.0  # every picture unknown
    with running(create_app(model, Limits())) as (port, _):
        _, _, rows = post_files(port, [("a.jpg", jpeg_bytes((30, 60, 220)), "image/jpeg")])
        assert rows[0]["unknown"] == 1 and rows[0]["class"] in ("blue", "red")
