"""Every user mistake on every command: exit code 2, the error in one or two lines, no traceback.

--debug shows the traceback instead; an internal failure exits 1 with a pointer to --debug.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from tests.conftest import TINY, TINY_MODEL, make_folder, train_tiny_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a dataset, a trained run and a few wrong files, shared by the cases."""
    d = tmp_path_factory.mktemp("mistakes")
    train_tiny_run(d)
    (d / "file.txt").write_text("not a folder, not an image")
    (d / "bad.safetensors").write_bytes(b"garbage" * 10)
    return d


MISTAKES = [
    (["nosuchcommand"], "No such command"),
    (["--nosuchopt", "train"], "No such option"),
    (["train"], "give DATA"),
    (["train", "{d}/data", "--strategy", "bogus"], "'bogus' is not one of"),
    (["train", "{d}/data", "--valid-pct", "abc"], "is not a valid float"),
    (["train", "{d}/data", "--valid-pct", "2"], "--valid-pct must be between 0 and 1"),
    (["train", "{d}/data", "--epochs", "0"], "0 is not in the range"),
    (["train", "{d}/file.txt"], "is a file"),
    (["train", "{d}/data", "--out", "{d}/file.txt"], "is a file: give a folder"),
    (["train", "{d}/data", "--weights", "{d}/bad.safetensors", "-m", TINY_MODEL], "cannot read weights"),
    (["train", "{d}/data", "--weights", "{d}/none.pth", "-m", TINY_MODEL], "does not exist"),
    (["train", "{d}/data", "--strategy", "scratch", "--arch", "conv@@"], "conv@@"),
    (["train", "{d}/data", "--strategy", "finetune", "--stages", "nonsense", *TINY], "nonsense"),
    (["train", "{d}/data", "--strategy", "finetune", "--mixup", "-1", *TINY], "--mixup is a Beta"),
    (["train", "{d}/data", "--strategy", "scratch", "--label-smoothing", "1.5"], "--label-smoothing must be"),
    (["train", "--resume", "{d}/nowhere"], "is not a run folder"),
    (["train", "--resume", "{d}/run"], "linear run, which has no epochs to resume"),
    (["train", "{d}/data", "--strategy", "scratch", "--batch-size", "1000"], "larger than the 8 training"),
    (["predict", "{d}/run"], "Missing argument"),
    (["predict", "{d}/nowhere", "{d}/data"], "is not a run folder"),
    (["predict", "{d}/run", "{d}/nowhere"], "does not exist"),
    (["predict", "{d}/data", "{d}/data"], "is not a run folder"),
    (["evaluate", "{d}/run"], "Missing argument"),
    (["evaluate", "{d}/run", "{d}/nowhere"], "is not a folder"),
    (["export", "{d}/nowhere"], "is not a run folder"),
    (["export", "{d}/run", "--format", "pickle"], "'pickle' is not one of"),
    (["summary", "no_such_model_xyz"], "no_such_model_xyz"),
    (["kernels", "{d}/run", "--image", "{d}/nowhere.jpg", "--out", "{d}/k"], "nowhere.jpg: missing"),
    (["kernels", "{d}/run", "--image", "{d}/file.txt", "--out", "{d}/k"], "not an image"),
    (["features", "{d}/run", "{d}/nowhere", "-o", "{d}/emb"], "does not exist"),
    (["features", "{d}/run", "{d}/data"], "Missing option '--out'"),
    (["similar", "{d}/nowhere.safetensors", "{d}/data/train/red/red_00.jpg"], "is not an embedding file"),
    (["dedupe", "{d}/nowhere"], "does not exist"),
    (["dedupe", "{d}/data", "--threshold", "2"], "not in the range"),
    (["imagenet", "{d}/nowhere.jpg"], "does not exist"),
    (["imagenet", "x.jpg", "--top", "0"], "not in the range"),
    (["check", "{d}/nowhere"], "is not a folder"),
    (["check"], "Missing argument"),
    (["--background", "pink", "check", "{d}/data"], "'pink' is not one of"),
    (["demo", "--out", "{d}/file.txt"], "file.txt"),
]


@pytest.mark.parametrize(("args", "expected"), MISTAKES, ids=[" ".join(a[:3]) for a, _ in MISTAKES])
def test_user_mistake_exits_2_in_two_lines(place: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(cli, [a.format(d=place) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Error:"))
    assert len(lines) - start <= 2, lines[start:]  # progress and logs may come before, never after
    assert expected in "\n".join(lines[start:])


def test_usage_errors_are_two_lines_with_the_help_hint() -> None:
    result = CliRunner().invoke(cli, ["train", "--strategy", "bogus", "x"])
    assert result.output.strip().splitlines() == [
        "Error: Invalid value for '--strategy': 'bogus' is not one of 'linear', 'finetune', 'scratch'.",
        "Try 'cli train -h' for help.",
    ]


def test_debug_shows_the_traceback(place: Path) -> None:
    from imagefit.errors import ModelError

    result = CliRunner().invoke(cli, ["--debug", "predict", str(place / "nowhere"), str(place / "data")])
    assert isinstance(result.exception, ModelError)  # raised, not turned into a one-liner


def test_internal_failure_exits_1_with_a_pointer(place: Path, monkeypatch) -> None:
    import imagefit.explain.summary as summary

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in imagefit")

    monkeypatch.setattr(summary, "summarize", broken)
    result = CliRunner().invoke(cli, ["summary", "simple_model"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: internal error: RuntimeError: a bug in imagefit (rerun with --debug for the traceback)"
    ]
    debug = CliRunner().invoke(cli, ["--debug", "summary", "simple_model"])
    assert isinstance(debug.exception, RuntimeError)


def test_console_script_usage_error_and_odd_file_names(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "d", n_train=2, n_valid=1)
    odd = Path(os.fsdecode(bytes(folder / "train" / "red") + b"/caf\xe9.jpg"))
    odd.write_bytes(b"not a picture")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "imagefit", "check", str(folder)], capture_output=True, env=env, timeout=120
    )
    assert proc.returncode == 3, proc.stderr
    assert b"caf\xe9.jpg: error [not-image]" in proc.stdout  # the name's own bytes, no crash
    usage = subprocess.run(
        [sys.executable, "-m", "imagefit", "check"], capture_output=True, text=True, env=env, timeout=120
    )
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines() == [
        "Error: Missing argument 'DATA'.",
        "Try 'imagefit check -h' for help.",
    ]
