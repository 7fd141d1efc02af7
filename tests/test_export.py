"""imagefit export: ONNX and TorchScript files that reproduce PyTorch, and predict from ONNX."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.export import export
from imagefit.runs import load
from tests.conftest import TINY_MODEL


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, Path]:
    from tests.conftest import make_folder

    root = tmp_path_factory.mktemp("export")
    data = make_folder(root / "data")
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(data),
            "--out",
            str(root / "run"),
            "--model",
            TINY_MODEL,
            "--weights",
            "none",
            "--engine",
            "torch",
            "-j",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "run", data


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch(run_dir, tmp_path, fmt) -> None:
    run, _ = run_dir
    result = export(run, fmt, tmp_path / f"m.{fmt}", dynamic_batch=fmt == "onnx")
    assert result.path.stat().st_size > 10_000
    assert result.max_abs_diff < 1e-4


def test_predict_with_an_exported_onnx_model_equals_the_run(run_dir, tmp_path) -> None:
    run, data = run_dir
    for dynamic, name in ((True, "dyn.onnx"), (False, "fixed.onnx")):
        args = ["export", str(run), "-o", str(tmp_path / name), "--batch-size", "3"]
        result = CliRunner().invoke(cli, args + (["--dynamic-batch"] if dynamic else []))
        assert result.exit_code == 0, result.output
        assert "max abs difference" in result.output
        out = tmp_path / f"{name}.csv"
        # -j 0: with torch 2.14.1, openvino 2026.4.1 and onnxruntime 1.32.0, a DataLoader worker
        # forked after an earlier test ran OpenVINO in this process crashes the process (SIGSEGV).
        result = CliRunner().invoke(
            cli, ["predict", str(tmp_path / name), str(data / "valid"), "--csv", str(out), "-j", "0"]
        )
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(out.open()))
        files = sorted((data / "valid").rglob("*.jpg"))
        want = load(run).predict(files, engine="torch", workers=0, progress=False)
        assert [r["path"] for r in rows] == [str(p) for p in files]
        got = np.array([[float(r["p_blue"]), float(r["p_red"])] for r in rows])
        np.testing.assert_allclose(got, want.probabilities, atol=1e-4)


def test_unknown_format_is_a_usage_error(run_dir) -> None:
    run, _ = run_dir
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "tflite"])
    assert result.exit_code == 2


def test_a_backbone_the_exporter_cannot_write_is_one_line_and_exit_2(run_dir, tmp_path, monkeypatch) -> None:
    import torch

    def refuse(*args, **kwargs):
        raise torch.onnx.errors.UnsupportedOperatorError("aten::fancy_op", 17, None)

    monkeypatch.setattr(torch.onnx, "export", refuse)
    run, _ = run_dir
    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot be exported as onnx" in lines[0] and "aten::fancy_op" in lines[0]
    assert "try --format torchscript" in lines[0] and not (tmp_path / "m.onnx").exists()


def test_a_corrupt_onnx_file_is_one_line_and_exit_2(run_dir, tmp_path) -> None:
    _, data = run_dir
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf graph" * 10)
    result = CliRunner().invoke(cli, ["predict", str(bad), str(data / "valid"), "-j", "0"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot load" in lines[0] and "as an ONNX model" in lines[0], result.output
