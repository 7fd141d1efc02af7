"""A mistake after good work never costs the good work: earlier run folders and outputs stay byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from tests.conftest import TINY, TINY_MODEL, train_tiny_run, write_image


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("earlier")
    train_tiny_run(d)
    scratch = ["--strategy", "scratch", "--arch", "conv4@3-pool2-dense8", "--epochs", "2", "-j", "0"]
    result = CliRunner().invoke(cli, ["train", str(d / "data"), "--out", str(d / "scratch"), *scratch])
    assert result.exit_code == 0, result.output
    image = d / "data" / "valid" / "red" / "red_00.jpg"
    args = [
        "predict",
        str(d / "run"),
        str(image),
        "--csv",
        str(d / "pred.csv"),
        "--engine",
        "torch",
        "-j",
        "0",
    ]
    assert CliRunner().invoke(cli, args).exit_code == 0
    return d


def _one_class(d: Path) -> Path:
    write_image(d / "one" / "cats" / "a.jpg", (1, 2, 3), 0)
    return d / "one"


@pytest.mark.parametrize(
    "args",
    [
        ["train", "{one}", "--out", "{d}/run", *TINY],  # a bad dataset into an existing run folder
        ["train", "{d}/data", "--out", "{d}/run", "--weights", "{d}/missing.pth", "-m", TINY_MODEL],
        ["train", "{d}/data", "--out", "{d}/scratch", "--strategy", "scratch"],  # already a run there
        ["train", "--resume", "{d}/run"],  # a linear run cannot be resumed
        ["predict", "{d}/run", "{d}/nowhere.jpg", "--csv", "{d}/pred.csv"],
        ["evaluate", "{d}/run", "{one}", "--out", "{d}/run"],
        ["export", "{d}/run", "--out", "{d}/pred.csv/model.onnx"],
    ],
)
def test_a_failed_command_leaves_earlier_outputs_untouched(earlier: Path, args: list[str]) -> None:
    one = _one_class(earlier)
    before = {name: _snapshot(earlier / name) for name in ("run", "scratch")}
    csv = (earlier / "pred.csv").read_bytes()
    result = CliRunner().invoke(cli, [a.format(d=earlier, one=one) for a in args])
    assert result.exit_code == 2, result.output
    assert {name: _snapshot(earlier / name) for name in ("run", "scratch")} == before
    assert (earlier / "pred.csv").read_bytes() == csv
