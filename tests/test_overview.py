"""imagefit runs and imagefit compare on tiny runs trained by the CLI: a linear, a scratch and a map run."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import imagefit
from imagefit.cli import cli
from tests._tiles import TINY_MAP_TRAIN, make_tiles
from tests.conftest import TINY, make_folder

SCRATCH = ["--strategy", "scratch", "--arch", "conv8@3-pool2-dense16", "--image-size", "24", "-j", "0"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """RUNS/linear, RUNS/scratch (3 epochs) and RUNS/maps/tiny (2 epochs), trained by the CLI."""
    root = tmp_path_factory.mktemp("overview")
    data = make_folder(root / "data", n_train=6, n_valid=3)
    folder = root / "runs"
    assert invoke("train", data, "--out", folder / "linear", *TINY).exit_code == 0
    assert invoke("train", data, "--out", folder / "scratch", *SCRATCH, "--epochs", "3").exit_code == 0
    tiles = make_tiles(root / "tiles", refs=("A1", "A2", "B1"), size=(70, 90))
    args = ["map-train", tiles, "--train", "A1,A2", "--valid", "B1", "--out", folder / "maps" / "tiny"]
    assert invoke("-q", *args, *TINY_MAP_TRAIN).exit_code == 0
    return folder


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_runs_lists_every_run_with_its_scores(runs: Path) -> None:
    result = invoke("runs", runs)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split()[:6] == ["run", "strategy", "backbone", "data", "train", "val_acc"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"linear", "scratch", "maps/tiny"}  # not their checkpoints/ or evaluation/
    assert rows["linear"][1:5] == ["linear", "test_efficientnet", "data", "12"]
    assert rows["linear"][5] == f"{metrics(runs / 'linear')['valid']['accuracy']:.4f}"
    assert rows["scratch"][7] == "3"  # epochs
    assert rows["maps/tiny"][5] == f"{metrics(runs / 'maps' / 'tiny')['valid_map']['pixel_accuracy']:.4f}"


def test_runs_json_and_sort(runs: Path) -> None:
    result = invoke("runs", runs, "--json", "--sort", "valid_loss")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    losses = [r["valid_loss"] for r in found]
    assert losses == sorted(losses)  # losses: lowest first
    scratch = next(r for r in found if r["run"] == "scratch")
    m = metrics(runs / "scratch")
    assert scratch["valid_accuracy"] == pytest.approx(m["valid"]["accuracy"])
    assert scratch["best_epoch"] == m["best"]["epoch"] and scratch["status"] == "done"
    assert scratch["train_images"] == 12 and scratch["valid_images"] == 6 and scratch["classes"] == 2
    by_accuracy = json.loads(invoke("runs", runs, "--json", "--sort", "valid_accuracy").output)
    accuracies = [r["valid_accuracy"] for r in by_accuracy]
    assert accuracies == sorted(accuracies, reverse=True)  # scores: best first
    assert [r.run for r in imagefit.list_runs(runs, sort="valid_accuracy")] == [r["run"] for r in by_accuracy]


def test_runs_rejects_an_unknown_sort_key_and_a_missing_folder(runs: Path, tmp_path: Path) -> None:
    result = invoke("runs", runs, "--sort", "speed")
    assert result.exit_code == 2 and "valid_accuracy" in result.output
    assert invoke("runs", tmp_path / "nowhere").exit_code == 2
    assert invoke("runs", tmp_path).output.strip() == f"no run folders under {tmp_path}"


def test_an_unfinished_run_shows_its_best_epoch_so_far(runs: Path, tmp_path: Path) -> None:
    import shutil

    run = shutil.copytree(runs / "scratch", tmp_path / "runs" / "stopped")
    (run / "metrics.json").unlink()
    (run / "model.safetensors").unlink()
    [found] = imagefit.list_runs(tmp_path / "runs")
    history = [line.split(",") for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert found.status == "unfinished" and found.epochs == 3
    assert found.valid_accuracy == pytest.approx(max(float(row[6]) for row in history))


def test_compare_writes_one_self_contained_page(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.html"
    result = invoke("compare", runs / "linear", runs / "scratch", "-o", out)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert re.findall(r'<tr data-run="([^"]+)"', page) == ["linear", "scratch"]
    assert page.count('class="confusion"') == 2 and 'id="confusion-0"' in page and 'id="confusion-1"' in page
    accuracy = metrics(runs / "scratch")["valid"]["accuracy"]
    assert f'data-value="{accuracy!r}"' in page
    assert "<td>strategy</td><td>linear</td><td>scratch</td>" in page  # the differences table
    assert 'src="http' not in page and "<link" not in page  # nothing to fetch
    pictures = [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r"base64,([^\"]+)\"", page)]
    assert len(pictures) == 3 and all(p.width > 300 for p in pictures)  # curves and two confusion figures


def test_compare_from_python_with_a_map_run(runs: Path, tmp_path: Path) -> None:
    out = imagefit.compare([runs / "scratch", runs / "maps" / "tiny"], tmp_path / "c.html")
    page = out.read_text()
    assert re.findall(r'<tr data-run="([^"]+)"', page) == ["scratch", "tiny"]
    assert "no evaluation of its validation images" in page  # a map run has no confusion matrix


def test_compare_refuses_a_folder_that_is_not_a_run(runs: Path, tmp_path: Path) -> None:
    result = invoke("compare", runs / "linear", tmp_path, "-o", tmp_path / "c.html")
    assert result.exit_code == 2 and "is not a run folder" in result.output
    assert not (tmp_path / "c.html").exists()
