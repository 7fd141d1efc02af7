"""The real command line, end to end, on tiny generated folders and a tiny untrained timm model."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from timm.data import ImageNetInfo

from imagefit.cli import cli
from imagefit.runs import load
from tests.conftest import TINY, TINY_MODEL, make_folder, write_image


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


pytestmark = pytest.mark.usefixtures("own_cache")


@pytest.fixture
def trained(tiny_data: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    result = invoke("train", tiny_data, "--out", run, *TINY)
    assert result.exit_code == 0, result.output
    return run


def test_train_writes_a_complete_run_folder(trained: Path, tiny_data: Path) -> None:
    config = json.loads((trained / "config.json").read_text())
    metrics = json.loads((trained / "metrics.json").read_text())
    assert config["classes"] == ["blue", "red"]
    assert config["arch"] == TINY_MODEL and config["strategy"] == "linear"
    assert config["data_config"]["input_size"] == [3, 160, 160]
    assert metrics["train"]["n"] == 20 and metrics["valid"]["n"] == 8
    assert metrics["valid"]["accuracy"] >= 0.75
    assert metrics["features"] == {"reused": 0, "computed": 28}
    assert (trained / "model.safetensors").stat().st_size > 10_000


def test_predict_csv_agrees_with_training_metrics(trained: Path, tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    result = invoke("predict", trained, tiny_data / "valid", "--csv", out, "--engine", "torch", "-j", "0")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["path", "class", "probability", "familiarity", "unknown", "p_blue", "p_red"]
    assert len(rows) == 8
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    for r in rows:
        probs = [float(r["p_blue"]), float(r["p_red"])]
        assert abs(sum(probs) - 1) < 1e-4
        assert float(r["probability"]) == max(probs)
        assert r["class"] == ("blue", "red")[int(np.argmax(probs))]
    accuracy = np.mean([Path(r["path"]).parent.name == r["class"] for r in rows])
    metrics = json.loads((trained / "metrics.json").read_text())
    assert accuracy == pytest.approx(metrics["valid"]["accuracy"])


def test_second_run_reuses_the_feature_cache(trained: Path, tiny_data: Path, tmp_path: Path) -> None:
    result = invoke("train", tiny_data, "--out", tmp_path / "again", *TINY)
    assert result.exit_code == 0
    metrics = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert metrics["features"] == {"reused": 28, "computed": 0}
    first = json.loads((trained / "metrics.json").read_text())
    assert metrics["valid"]["loss"] == pytest.approx(first["valid"]["loss"], rel=1e-5)


def test_loaded_run_predicts_like_the_trained_classifier(trained: Path, tiny_data: Path) -> None:
    from imagefit.train import train

    result = train(tiny_data, model=TINY_MODEL, weights="none", engine="torch", workers=0, progress=False)
    files = sorted((tiny_data / "valid").rglob("*.jpg"))
    a = result.classifier.predict(files, engine="torch", workers=0, progress=False)
    b = load(result.run_dir).predict(files, engine="torch", workers=0, progress=False)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)


def test_unreadable_images_are_skipped_and_named(tiny_data: Path, tmp_path: Path) -> None:
    bad = tiny_data / "train" / "red" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tiny_data / "train" / "blue" / "empty.png").write_bytes(b"")
    result = CliRunner().invoke(cli, ["train", str(tiny_data), "--out", str(tmp_path / "r"), *TINY])
    assert result.exit_code == 0, result.output
    assert "broken.jpg" in result.output and "empty.png" in result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert sorted(Path(s["path"]).name for s in metrics["skipped"]) == ["broken.jpg", "empty.png"]
    assert metrics["train"]["n"] == 20


def test_kaggle_names_and_valid_pct_split(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    for i in range(10):
        write_image(flat / f"cat.{i}.jpg", (200, 40, 30), i)
        write_image(flat / f"dog.{i}.jpg", (30, 60, 200), 100 + i)
    result = invoke("train", flat, "--out", tmp_path / "r", "--valid-pct", "0.3", *TINY)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["valid"]["n"] == 6 and metrics["train"]["n"] == 14
    assert json.loads((tmp_path / "r" / "config.json").read_text())["classes"] == ["cat", "dog"]


def test_test_split_gets_predictions(tiny_data: Path, tmp_path: Path) -> None:
    for i in range(3):
        write_image(tiny_data / "test" / f"{i}.jpg", (220, 40, 30), 500 + i)
    result = invoke("train", tiny_data, "--out", tmp_path / "r", *TINY)
    assert result.exit_code == 0
    rows = list(csv.DictReader((tmp_path / "r" / "test_predictions.csv").open()))
    assert [Path(r["path"]).name for r in rows] == ["0.jpg", "1.jpg", "2.jpg"]


def test_imagenet_json(tiny_data: Path) -> None:
    files = sorted((tiny_data / "valid" / "red").glob("*.jpg"))[:2]
    result = invoke("imagenet", *files, "--model", TINY_MODEL, "--weights", "none", "--top", "3", "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert [i["path"] for i in items] == [str(f) for f in files]
    info = ImageNetInfo()
    for item in items:
        preds = item["predictions"]
        assert len(preds) == 3
        assert [p["probability"] for p in preds] == sorted((p["probability"] for p in preds), reverse=True)
        for p in preds:
            assert p["wnid"] == info.index_to_label_name(p["index"])
            assert p["name"] == info.index_to_description(p["index"])


@pytest.mark.parametrize(
    ("make", "args", "expected"),
    [
        (lambda d: None, ["train", "{d}/nowhere"], "nowhere does not exist"),
        (
            lambda d: (d / "flat").mkdir() or write_image(d / "flat" / "x.jpg", (1, 2, 3), 0),
            ["train", "{d}/flat"],
            "has no class subfolders",
        ),
        (
            lambda d: write_image(d / "one" / "cats" / "a.jpg", (1, 2, 3), 0),
            ["train", "{d}/one"],
            "only one class",
        ),
        (
            lambda d: make_folder(d / "e") and (d / "e" / "train" / "zebra").mkdir(),
            ["train", "{d}/e"],
            "has no images",
        ),
        (lambda d: None, ["predict", "{d}", "{d}"], "is not a run folder"),
        (lambda d: make_folder(d / "m"), ["train", "{d}/m", "--model", "no_such_net"], "unknown backbone"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path: Path, make, args, expected) -> None:
    make(tmp_path)
    result = CliRunner().invoke(cli, [a.format(d=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_console_script_usage_error_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imagefit", "train", "--strategy", "bogus", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "bogus" in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_command_prints_metrics_and_writes_figures(trained: Path, tiny_data: Path) -> None:
    result = invoke("evaluate", trained, tiny_data, "--engine", "torch", "-j", "0")
    assert result.exit_code == 0, result.output
    report = json.loads((trained / "evaluation" / "evaluation.json").read_text())
    metrics = json.loads((trained / "metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["valid"]["accuracy"])
    assert f"accuracy {report['accuracy']:.4f}" in result.output
    assert (trained / "evaluation" / "confusion.png").stat().st_size > 1000
    missing = CliRunner().invoke(cli, ["evaluate", str(trained), str(tiny_data / "nope")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_each_log_line_reaches_stderr_in_one_write(monkeypatch):
    """Processes sharing a stderr (the ranks of a torchrun world) write whole lines: a message and
    its newline go out in one write, so lines never run into each other."""
    import io
    import logging

    from imagefit.cli.root import setup_logging

    writes = []

    class Recorder(io.StringIO):
        def write(self, text):
            writes.append(text)
            return len(text)

    monkeypatch.setattr(sys, "stderr", Recorder())
    setup_logging(quiet=False)
    logging.getLogger("imagefit.maps").info("map 1/2 T1.tif: 0.0 Mpx in 0.6 s")
    logging.getLogger("imagefit.maps").warning("no label raster for 1 tile(s)")
    assert [w for w in writes if w] == [
        "map 1/2 T1.tif: 0.0 Mpx in 0.6 s\n",
        "warning: no label raster for 1 tile(s)\n",
    ]
