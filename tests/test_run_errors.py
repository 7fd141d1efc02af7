"""Bad runs and bad data for evaluate, predict and report: one line, exit code 2, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from tests.conftest import TINY_MODEL, make_folder

TORCH = ["--engine", "torch", "-j", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("errors")
    data = make_folder(root / "data", n_train=4, n_valid=2)
    run = root / "run"
    args = ["train", str(data), "--out", str(run), "--model", TINY_MODEL, "--weights", "none", *TORCH]
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    return run, data


def _edit_config(run: Path, **changes) -> None:
    config = json.loads((run / "config.json").read_text())
    config.update(changes)
    (run / "config.json").write_text(json.dumps(config))


DAMAGE = {
    "no config": (lambda run: (run / "config.json").unlink(), "is not a run folder"),
    "config not JSON": (lambda run: (run / "config.json").write_text('{"arch": '), "not valid JSON"),
    "config a list": (lambda run: (run / "config.json").write_text("[1, 2]"), "not an imagefit run config"),
    "config lacks keys": (lambda run: (run / "config.json").write_text('{"arch": "x"}'), "lacks backbone"),
    "newer version": (
        lambda run: _edit_config(run, format_version=99, imagefit_version="9.0"),
        "newer imagefit",
    ),
    "no weights": (lambda run: (run / "model.safetensors").unlink(), "has no model.safetensors"),
    "truncated weights": (
        lambda run: (run / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes()[:500]),
        "cannot be loaded",
    ),
    "weights of other classes": (lambda run: _edit_config(run, classes=["a", "b", "c"]), "size mismatch"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", ["evaluate", "predict", "report"])
def test_damaged_run_folder_is_one_line_exit_2(trained, tmp_path: Path, damage: str, command: str) -> None:
    run, data = trained
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    spoil, message = DAMAGE[damage]
    spoil(broken)
    args = {
        "evaluate": [broken, data, *TORCH],
        "predict": [broken, data / "valid", *TORCH],
        "report": [broken],
    }
    result = CliRunner().invoke(cli, [command, *map(str, args[command])])
    if command == "report" and damage in ("no weights", "truncated weights", "weights of other classes"):
        assert result.exit_code == 0  # the report reads config, metrics and figures, not the weights
        return
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert message in result.output and "Traceback" not in result.output


def test_data_with_other_classes_is_one_line_exit_2(trained, tmp_path: Path) -> None:
    run, _ = trained
    other = make_folder(tmp_path / "other", classes=("blue", "green"), n_train=1, n_valid=1)
    result = CliRunner().invoke(cli, ["evaluate", str(run), str(other), *TORCH])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "classes the model does not know: green" in result.output


def test_unreadable_images_are_skipped_and_all_unreadable_is_an_error(trained, tmp_path: Path) -> None:
    run, data = trained
    folder = tmp_path / "some"
    shutil.copytree(data / "valid", folder)
    (folder / "red" / "zero.jpg").write_bytes(b"")
    result = CliRunner().invoke(
        cli, ["evaluate", str(run), str(folder), "--out", str(tmp_path / "ev"), *TORCH]
    )
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable image(s)" in result.output
    saved = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert saved["n"] == 4 and [Path(s["path"]).name for s in saved["skipped"]] == ["zero.jpg"]
    assert "zero.jpg" in (tmp_path / "ev" / "report.html").read_text()
    bad = tmp_path / "bad"
    for name in ("blue", "red"):
        (bad / name).mkdir(parents=True)
        (bad / name / "x.jpg").write_bytes(b"not an image")
    result = CliRunner().invoke(cli, ["evaluate", str(run), str(bad), *TORCH])
    assert result.exit_code == 2 and "none of the 2 images" in result.output
    sub = CliRunner().invoke(
        cli, ["predict", str(run), str(bad), "--submission", str(tmp_path / "s.csv"), *TORCH]
    )
    assert sub.exit_code == 2 and "nothing to submit" in sub.output and not (tmp_path / "s.csv").exists()
