"""imagefit train --strategy scratch through the real command line, then predict and resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.cli import cli

SCRATCH = ["--strategy", "scratch", "--arch", "conv8@3-pool2-dense16", "--image-size", "24", "-j", "0"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_scratch_run_trains_predicts_and_loads(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = invoke("train", tiny_data, "--out", run, *SCRATCH, "--epochs", "3", "--lr", "0.01")
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["strategy"] == "scratch" and config["classes"] == ["blue", "red"]
    history = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in history] == [1, 2, 3]
    assert {"loss", "acc", "val_loss", "val_acc", "lr", "stage", "seconds"} <= set(history[0])
    out = tmp_path / "p.csv"
    result = invoke("predict", run, tiny_data / "valid", "--csv", out, "--engine", "torch", "-j", "0")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    metrics = json.loads((run / "metrics.json").read_text())
    accuracy = sum(Path(r["path"]).parent.name == r["class"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(metrics["valid"]["accuracy"])


def test_resume_from_the_cli_continues_the_same_run(tiny_data: Path, tmp_path: Path) -> None:
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert invoke("train", tiny_data, "--out", whole, *SCRATCH, "--epochs", "2").exit_code == 0
    assert invoke("train", tiny_data, "--out", part, *SCRATCH, "--epochs", "2").exit_code == 0
    (part / "model.safetensors").unlink()  # as if killed before the end: only checkpoints remain
    result = invoke("train", "--resume", part, "-j", "0")
    assert result.exit_code == 0, result.output
    a = json.loads((whole / "metrics.json").read_text())["valid"]
    b = json.loads((part / "metrics.json").read_text())["valid"]
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--arch", "conv8@3-wobble"], "wobble"),
        (["--arch", "larger_model", "--lr", "0"], "--lr must be a positive number"),
        (["--arch", "larger_model", "--image-size", "10"], "cannot take"),
        (["--arch", "larger_model", "--batch-size", "64"], "larger than the 20 training images"),
    ],
)
def test_bad_scratch_options_exit_2_before_training(tiny_data: Path, tmp_path: Path, args, expected) -> None:
    result = invoke("train", tiny_data, "--out", tmp_path / "r", "--strategy", "scratch", "-j", "0", *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output.lower()
    assert "Traceback" not in result.output
    assert not (tmp_path / "r" / "history.csv").exists()
