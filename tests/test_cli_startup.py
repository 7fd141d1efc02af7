"""The command line starts light: help and usage errors import no model code; commands load lazily."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.cli.maps import join_values
from imagefit.cli.root import COMMANDS
from imagefit.cli.train import given_options, train
from imagefit.train.options import DEFAULT_STAGES, ScratchOptions

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "numpy", "sklearn", "matplotlib", "rasterio", "openvino", "onnxruntime", "PIL")
PROBE = """
import sys
from imagefit.cli import main
sys.argv = ["imagefit", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("LOADED", *sorted({m.split(".")[0] for m in sys.modules} & set(%r)))
print("CODE", code)
"""


def _modules_loaded(*args: str) -> tuple[list[str], int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), *args], capture_output=True, text=True, env=env, timeout=120
    )
    lines = {key: value for key, _, value in (line.partition(" ") for line in proc.stdout.splitlines())}
    return lines["LOADED"].split(), int(lines["CODE"])


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--help"], 0), (["train", "--help"], 0), (["train"], 2), (["map-train", "--help"], 0), (["nope"], 2)],
)
def test_help_and_usage_errors_import_no_heavy_library(args: list[str], code: int) -> None:
    loaded, exit_code = _modules_loaded(*args)
    assert exit_code == code
    assert loaded == []


def test_the_package_names_stay_the_same_and_load_on_first_use() -> None:
    script = (
        "import sys, imagefit, imagefit.train.options\n"
        "assert 'torch' not in sys.modules\n"
        "import imagefit.evaluate.report, imagefit.inference.imagenet\n"
        "assert imagefit.train.__module__ == 'imagefit.train.entry' and callable(imagefit.load)\n"
        "from imagefit.data import discover_dataset\n"
        "from imagefit.evaluate import report\n"
        "from imagefit.inference import imagenet\n"
        "from imagefit.train.engine import distributed\n"
        "assert callable(report) and callable(imagenet)\n"
        "assert distributed.__name__ == 'imagefit.train.engine.distributed'\n"
        "assert 'create_backbone' in dir(imagefit.models)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_table_matches_each_command(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command.name == name
    listed = click.Command(name, help=COMMANDS[name][2])
    assert command.get_short_help_str(500) == listed.get_short_help_str(500)


def test_root_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].strip().splitlines()]
    assert listed == sorted(COMMANDS)


@pytest.mark.parametrize(
    ("args", "strategy", "takers"),
    [
        (["--epochs", "3"], "linear", "scratch"),
        (["--strategy", "scratch", "--stages", "x"], "scratch", "finetune"),
        (["--strategy", "scratch", "--model", "m"], "scratch", "linear, finetune"),
        (["--strategy", "finetune", "--arch", "simple_model"], "finetune", "scratch"),
    ],
)
def test_an_option_the_strategy_does_not_take_exits_2(tmp_path: Path, args, strategy, takers) -> None:
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "data"), "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2, result.output
    option = next(a for a in args[::-1] if a.startswith("--"))
    expected = f"Error: {option} is not an option of the {strategy} strategy: only {takers} take(s) it"
    assert result.output.strip().splitlines()[-1] == expected
    assert not (tmp_path / "r").exists()


def test_resume_refuses_new_options(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path), "--epochs", "3"])
    assert result.exit_code == 2
    assert "drop --epochs" in result.output


def _given(*args: str) -> dict:
    return given_options(train.make_context("train", ["data", *args]))


def test_only_the_options_given_reach_the_library() -> None:
    assert _given() == {}
    assert _given("--seed", "3", "-j", "0", "--out", "r", "--strategy", "scratch") == {}  # run arguments
    assert _given("--no-cache", "--channels", "1", "--optimizer", "SGD", "--epochs", "10") == {
        "cache": False,
        "channels": 1,
        "optimizer": "sgd",
        "epochs": 10,  # given, though it equals the default
    }
    assert _given("--aug", "rotate=15") == {"augment": "rotate=15"}
    assert _given("--augment", "--aug", "rotate=15") == {"augment": "rotate=15"}
    assert _given("--no-augment", "--aug", "rotate=15") == {"augment": False}
    assert _given("--no-augment") == {"augment": False}


def test_train_help_shows_the_dataclass_defaults() -> None:
    text = " ".join(CliRunner().invoke(cli, ["train", "--help"]).output.split())
    assert f"(default: {ScratchOptions.epochs})" in text
    assert f"(default: {DEFAULT_STAGES})" in text
    assert "(default: adamw (finetune), adam (scratch))" in text


@pytest.mark.parametrize(
    ("args", "joined"),
    [
        (["T", "--train", "A", "B", "--valid", "C"], ["T", "--train", "A,B", "--valid", "C"]),
        (["--valid", "C", "--train", "A", "B"], ["--valid", "C", "--train", "A,B"]),
        (["--train=A", "B", "-o", "r"], ["--train=A,B", "-o", "r"]),
        (["--train", "A,B", "--train", "C"], ["--train", "A,B", "--train", "C"]),
        (["--train", "A", "--", "B"], ["--train", "A", "--", "B"]),
    ],
)
def test_train_refs_as_typed(args: list[str], joined: list[str]) -> None:
    assert join_values(args, "--train") == joined


def test_map_train_reads_space_separated_refs(tmp_path: Path, monkeypatch) -> None:
    import imagefit.maps.training.map_train as module
    from imagefit.errors import OptionError

    seen = []

    def fake(tiles, train_refs, valid_ref, **options):
        seen.append((train_refs, valid_ref))
        raise OptionError("stop here")

    monkeypatch.setattr(module, "train_map", fake)
    args = ["map-train", str(tmp_path), "--train", "T1P01", "T1P02", "--valid", "T1P03", "--train", "T2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "stop here" in result.output
    assert seen == [(["T1P01", "T1P02", "T2"], ["T1P03"])]
