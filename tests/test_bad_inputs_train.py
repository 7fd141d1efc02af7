"""Training on a folder of every bad kind: converted files are trained on, bad ones skipped with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from tests._corpus import write_corpus
from tests.conftest import TINY

REASONS = {
    "empty": "empty file",
    "not-image": "not an image",
    "truncated": "truncated",
    "too-large": "pixels is more than the limit",
    "unreadable": "link",
}


pytestmark = pytest.mark.usefixtures("own_cache")


def _assert_outcomes(run: Path, trained: dict, skipped: dict, output: str) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    reasons = {Path(s["path"]).name: s["reason"] for s in metrics["skipped"]}
    assert set(reasons) == set(skipped)
    for name, kind in skipped.items():
        assert REASONS[kind] in reasons[name], (name, reasons[name])
    assert metrics["train"]["n"] == 12 + len(trained)  # 6 good per class + every converted file
    assert metrics["valid"]["n"] == 6
    assert "will skip" in output and "class imbalance in train: red" in output
    assert "converted:" in output


def test_linear_trains_on_converted_files_and_skips_bad_ones(tmp_path: Path) -> None:
    data, trained, skipped = write_corpus(tmp_path / "data")
    result = CliRunner().invoke(cli, ["train", str(data), "--out", str(tmp_path / "run"), *TINY])
    assert result.exit_code == 0, result.output
    _assert_outcomes(tmp_path / "run", trained, skipped, result.output)
    assert f"skipped {len(skipped)} unreadable image(s)" in result.output


def test_scratch_trains_on_converted_files_and_skips_bad_ones(tmp_path: Path) -> None:
    data, trained, skipped = write_corpus(tmp_path / "data")
    args = ["--strategy", "scratch", "--arch", "conv4@3-pool2-dense8", "--epochs", "1", "-j", "0"]
    result = CliRunner().invoke(cli, ["train", str(data), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 0, result.output
    _assert_outcomes(tmp_path / "run", trained, skipped, result.output)
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").is_file()


def test_leakage_is_warned_before_training(tmp_path: Path) -> None:
    from tests.conftest import make_folder

    data = make_folder(tmp_path / "data", n_train=4, n_valid=2)
    (data / "valid" / "red" / "leak.jpg").write_bytes((data / "train" / "red" / "red_01.jpg").read_bytes())
    result = CliRunner().invoke(cli, ["train", str(data), "--out", str(tmp_path / "run"), *TINY])
    assert result.exit_code == 0, result.output
    assert "leakage: " in result.output and "leak.jpg" in result.output
