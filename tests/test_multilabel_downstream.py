"""A multi-label run downstream: submission, export and ONNX, the cached graph, serve, TTA, features."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import imagefit
from imagefit.cli import cli
from imagefit.errors import DataError
from imagefit.export import export
from imagefit.features.store import load_embeddings
from imagefit.inference.onnx_classifier import OnnxClassifier
from imagefit.inference.predictions import Predictions
from imagefit.inference.tag_submission import tag_rows
from imagefit.runs.quick import graph_path, predictor
from imagefit.serve.app import create_app
from imagefit.serve.model import ServedModel
from imagefit.train.heads import sigmoid
from tests._multilabel import LABELS, write_table
from tests._serve import jpeg_bytes, post_files, request, running
from tests.conftest import TINY_MODEL

TINY = {"model": TINY_MODEL, "weights": "none", "engine": "torch", "workers": 0, "progress": False}
QUIET = {"engine": "torch", "workers": 0, "progress": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("ml-downstream")
    table = write_table(root / "images")
    run = imagefit.train(table, out=root / "run", **TINY).run_dir
    return run, sorted((root / "images").glob("*.png"))


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _same_csv(a: Path, b: Path) -> None:
    """The same paths and labels, and probabilities within 1e-4."""
    rows_a, rows_b = _csv_rows(a), _csv_rows(b)
    assert [list(r) for r in rows_a] == [list(r) for r in rows_b]
    for x, y in zip(rows_a, rows_b, strict=True):
        assert (Path(x["path"]).name, x["labels"]) == (Path(y["path"]).name, y["labels"])
        for key in (k for k in x if k.startswith("p_")):
            assert float(x[key]) == pytest.approx(float(y[key]), abs=1e-4)


def test_submission_lists_image_names_and_their_predicted_tags(trained, tmp_path: Path) -> None:
    run, files = trained
    out = tmp_path / "sub.csv"
    args = ["predict", str(run), *map(str, files), "--submission", str(out), "--engine", "torch", "-j", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["image_name", "tags"]
    preds = imagefit.load(run).predict(files, **QUIET)
    expected = sorted((p.stem, " ".join(labels)) for p, labels in zip(preds.paths, preds.labels, strict=True))
    assert [tuple(r) for r in rows[1:]] == expected
    assert any(" " in tags for _, tags in expected)  # several labels in one cell, space-separated
    refused = CliRunner().invoke(cli, [*args, "--positive", "red"])
    assert refused.exit_code == 2 and "multi-label model submits tags" in refused.output


def test_submission_rows_sort_naturally_and_refuse_two_images_of_one_name() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.6]], np.float32)
    names = [Path("a/test_10.jpg"), Path("a/test_2.jpg"), Path("a/file_1.jpg")]
    preds = Predictions(["clear", "haze"], names, probs, thresholds=np.array([0.5, 0.5]))
    assert tag_rows(preds) == [("file_1", "clear haze"), ("test_2", "haze"), ("test_10", "clear")]
    same_name = [names[0], Path("b/test_10.png")]
    twice = Predictions(["clear", "haze"], same_name, probs[:2], thresholds=np.array([0.5, 0.5]))
    with pytest.raises(DataError, match="test_10"):
        tag_rows(twice)


def test_exported_onnx_predicts_the_same_csv_as_the_run(trained, tmp_path: Path) -> None:
    run, files = trained
    result = export(run, out=tmp_path / "ml.onnx", dynamic_batch=True)
    assert result.max_abs_diff < 1e-4
    onnx = OnnxClassifier(result.path)
    torch_run = imagefit.load(run)
    assert onnx.multilabel and np.allclose(onnx.thresholds, torch_run.thresholds)
    want = torch_run.predict(files, **QUIET)
    assert want.familiarity is not None
    want.familiarity = want.unknown = None  # the familiarity stays with the run folder, not the export
    want.to_csv(tmp_path / "torch.csv")
    onnx.predict(files, progress=False).to_csv(tmp_path / "onnx.csv")
    _same_csv(tmp_path / "onnx.csv", tmp_path / "torch.csv")
    many = onnx.predict(files * 5, progress=False, workers=0)  # more than FEW: the batched path
    assert len(many.paths) == 5 * len(files) > 64
    np.testing.assert_allclose(many.probabilities[: len(files)], want.probabilities, atol=1e-4)
    assert many.labels[: len(files)] == want.labels


def test_the_cached_graph_predicts_a_multilabel_run_as_the_run(trained, tmp_path: Path) -> None:
    run, files = trained
    assert graph_path(run) is not None and graph_path(run).is_file()  # cached by training
    quick = predictor(run)
    assert isinstance(quick, OnnxClassifier) and quick.multilabel
    quick.predict(files, progress=False).to_csv(tmp_path / "quick.csv")
    predictor(run, quick=False).predict(files, **QUIET).to_csv(tmp_path / "torch.csv")
    _same_csv(tmp_path / "quick.csv", tmp_path / "torch.csv")
    out = tmp_path / "cli.csv"
    args = ["predict", str(run), *map(str, files[:3]), "--csv", str(out), "--threshold", "0.3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for row in _csv_rows(out):
        assert row["labels"].split() == [c for c in LABELS if float(row[f"p_{c}"]) >= 0.3]


def test_serve_answers_labels_probabilities_and_thresholds(trained, tmp_path: Path) -> None:
    run, _ = trained
    model = ServedModel.from_run(run, engine="torch", max_batch=4)
    thresholds = json.loads((run / "config.json").read_text())["thresholds"]
    colours = {"a.jpg": (220, 40, 30), "b.jpg": (30, 60, 220)}
    with running(create_app(model)) as (port, _):
        status, _, rows = post_files(port, [(n, jpeg_bytes(c), "image/jpeg") for n, c in colours.items()])
        _, _, info = request(port, "GET", "/model")
    assert status == 200 and [r["path"] for r in rows] == list(colours)
    assert info["task"] == "multilabel"
    assert list(info["thresholds"].values()) == pytest.approx(thresholds, abs=1e-6)
    for name, colour in colours.items():
        (tmp_path / name).write_bytes(jpeg_bytes(colour))
    want = imagefit.load(run).predict([tmp_path / n for n in colours], **QUIET)
    for row, labels, probs in zip(rows, want.labels, want.probabilities, strict=True):
        assert row["labels"] == labels and "class" not in row
        assert [row[f"p_{c}"] for c in LABELS] == pytest.approx(list(probs), abs=1e-4)
        assert [row["thresholds"][c] for c in LABELS] == pytest.approx(thresholds, abs=1e-6)


def test_tta_averages_sigmoid_probabilities(trained) -> None:
    run, files = trained
    classifier = imagefit.load(run)
    averaged = classifier.predict(files, tta=True, **QUIET)
    head = classifier.model.get_classifier()
    views = []
    for view in ("image", "mirror"):
        vectors = classifier.extractor(**QUIET, view=view)(files).vectors
        views.append(sigmoid(vectors @ head.weight.detach().numpy().T + head.bias.detach().numpy()))
    assert averaged.multilabel
    np.testing.assert_allclose(averaged.probabilities, (views[0] + views[1]) / 2, atol=1e-5)
    assert not np.allclose(views[0], views[1], atol=1e-4)  # the mirror changes something


def test_features_of_a_multilabel_run_are_its_pre_logits(trained, tmp_path: Path) -> None:
    run, files = trained
    out = tmp_path / "emb.safetensors"
    result = CliRunner().invoke(
        cli, ["features", str(run), str(files[0].parent), "-o", str(out), "--engine", "torch", "-j", "0"]
    )
    assert result.exit_code == 0, result.output
    data = load_embeddings(out)
    classifier = imagefit.load(run)
    expected = classifier.extractor(**QUIET)(files).vectors
    assert [Path(p).name for p in data.paths] == [f.name for f in files]
    np.testing.assert_allclose(data.vectors, expected, atol=1e-5)


def test_evaluate_command_prints_a_multilabel_run_s_scores(trained, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from imagefit.cli import cli

    run, _ = trained
    table = run.parent / "images" / "tags.csv"
    result = CliRunner().invoke(
        cli, ["evaluate", str(run), str(table), "--out", str(tmp_path / "ev"), "--engine", "torch", "-j", "0"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert (
        f"mAP {saved['mAP']:.4f}" in result.output
        and f"samples-F1 {saved['samples_f1']:.4f}" in result.output
    )
    assert all(f"{label}: precision" in result.output for label in saved["classes"])
