"""A run's cached ONNX graph predicts a few images as the run does, without importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imagefit.inference.onnx_classifier import OnnxClassifier
from imagefit.runs.quick import graph_path, predictor
from imagefit.train import train
from tests.conftest import TINY_MODEL, make_folder


@pytest.fixture
def linear_run(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "cache"))
    data = make_folder(tmp_path / "data")
    options = {"model": TINY_MODEL, "weights": "none", "engine": "torch", "workers": 0, "progress": False}
    return train(data, out=tmp_path / "run", **options).run_dir, data


def test_training_caches_the_graph_and_it_predicts_as_the_run(linear_run) -> None:
    run, data = linear_run
    files = sorted((data / "valid").rglob("*.jpg"))
    assert graph_path(run).is_file()  # written at the end of training
    torch_run = predictor(run, quick=False)
    assert not isinstance(torch_run, OnnxClassifier)
    want = torch_run.predict(files, engine="torch", workers=0, progress=False)
    quick = predictor(run)
    assert isinstance(quick, OnnxClassifier) and quick.classes == torch_run.classes
    got = quick.predict(files, progress=False)
    assert [p.name for p in got.paths] == [p.name for p in want.paths]
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=1e-4)


def test_a_run_without_its_graph_loads_with_torch_and_caches_it(linear_run) -> None:
    run, _ = linear_run
    graph_path(run).unlink()
    assert not isinstance(predictor(run), OnnxClassifier)
    assert graph_path(run).is_file() and isinstance(predictor(run), OnnxClassifier)


def test_a_changed_run_is_not_served_by_an_old_graph(linear_run) -> None:
    run, _ = linear_run
    before = graph_path(run)
    (run / "config.json").write_text((run / "config.json").read_text().replace('"seed": 0', '"seed": 1'))
    assert graph_path(run) != before and not graph_path(run).is_file()


def test_predicting_one_image_from_the_graph_imports_no_torch(linear_run, tmp_path: Path) -> None:
    run, data = linear_run
    image = sorted((data / "valid").rglob("*.jpg"))[0]
    code = (
        "import sys; from imagefit.cli import main; sys.argv = ['imagefit', '-q', 'predict', sys.argv[1], "
        "sys.argv[2]]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'timm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run), str(image)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "False False"
    assert lines[0].split("\t")[2] == str(image) and lines[0].split("\t")[0] in ("blue", "red")
