"""Evaluation: metrics equal scikit-learn's, galleries pick the right images, a cached re-run is free."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn import metrics as skm

from imagefit.errors import DataError
from imagefit.evaluate import confusion_text, evaluate, evaluation_metrics
from imagefit.evaluate import galleries as g
from tests.conftest import COLOURS, TINY_MODEL, make_folder, write_image

CLASSES = ["a", "b", "c", "d"]
OPTIONS = {"engine": "torch", "workers": 0, "progress": False}


def _count_forward_passes(monkeypatch) -> list[int]:
    from imagefit.features.engines import TorchEngine

    calls: list[int] = []
    original = TorchEngine.__call__
    monkeypatch.setattr(TorchEngine, "__call__", lambda self, x: calls.append(len(x)) or original(self, x))
    return calls


@pytest.fixture
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(len(CLASSES)), size=60)
    y_true = rng.integers(0, len(CLASSES), 60)
    return y_true, probs


def test_metrics_equal_scikit_learn(synthetic) -> None:
    y_true, probs = synthetic
    m = evaluation_metrics(y_true, probs, CLASSES)
    y_pred = probs.argmax(1)
    labels = list(range(len(CLASSES)))
    assert m["loss"] == pytest.approx(skm.log_loss(y_true, probs, labels=labels))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert set(m["top_k_accuracy"]) == {"2", "3"}  # only k < 4 classes
    for k in (2, 3):
        assert m["top_k_accuracy"][str(k)] == pytest.approx(skm.top_k_accuracy_score(y_true, probs, k=k))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, name in enumerate(CLASSES):
        assert m["per_class"][name] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
        )
    cm = skm.confusion_matrix(y_true, y_pred)
    assert m["confusion_matrix"] == cm.tolist()
    assert np.allclose(
        m["confusion_matrix_normalised"], skm.confusion_matrix(y_true, y_pred, normalize="true")
    )
    assert m["n"] == 60


def test_binary_has_no_top_k_and_an_absent_class_is_zero() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    m = evaluation_metrics([0, 1, 1], probs, ["x", "y", "z"])
    assert m["top_k_accuracy"] == {"2": pytest.approx(1.0)}
    assert m["per_class"]["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix_normalised"][2] == [0.0, 0.0, 0.0]
    assert evaluation_metrics([0, 1], probs[:2, :2], ["x", "y"])["top_k_accuracy"] == {}


def test_confusion_text_rows_are_true_classes() -> None:
    text = confusion_text([[5, 1], [0, 12]], ["cat", "dog"])
    lines = text.splitlines()
    assert lines[0].startswith("true \\ pred") and lines[0].split()[-2:] == ["cat", "dog"]
    assert lines[1].split() == ["cat", "5", "1"] and lines[2].split() == ["dog", "0", "12"]


# Hand-made table: rows, true class, probabilities of (a, b, c).
TABLE = np.array(
    [
        [0.70, 0.20, 0.10],  # 0 true a, pred a (correct)
        [0.95, 0.03, 0.02],  # 1 true a, pred a (correct, most confident a)
        [0.40, 0.55, 0.05],  # 2 true a, pred b (wrong)
        [0.10, 0.85, 0.05],  # 3 true c, pred b (wrong, most confident wrong b)
        [0.50, 0.49, 0.01],  # 4 true b, pred a (wrong, most uncertain)
        [0.80, 0.15, 0.05],  # 5 true c, pred a (wrong, most confident wrong a)
        [0.10, 0.20, 0.70],  # 6 true c, pred c (correct)
        [0.30, 0.60, 0.10],  # 7 true b, pred b (correct)
    ]
)
TRUE = np.array([0, 0, 0, 2, 1, 2, 2, 1])


def test_most_confident_incorrect_is_the_highest_probability_wrong_one_per_predicted_class() -> None:
    assert g.most_confident_incorrect_per_class(TRUE, TABLE, n=1) == [5, 3]  # a, b; no wrong c
    assert g.most_confident_incorrect_per_class(TRUE, TABLE, n=5) == [5, 4, 3, 2]


def test_most_confident_correct_per_class() -> None:
    assert g.most_confident_correct_per_class(TRUE, TABLE, n=1) == [1, 7, 6]
    assert g.most_confident_correct_per_class(TRUE, TABLE, n=3) == [1, 0, 7, 6]


def test_most_uncertain_has_the_smallest_top_two_margin() -> None:
    assert g.most_uncertain(TRUE, TABLE, n=3) == [4, 2, 7]  # margins 0.01, 0.15, 0.30


def test_random_galleries_are_correct_or_wrong_and_reproducible() -> None:
    correct = g.random_correct(TRUE, TABLE, n=3, seed=1)
    wrong = g.random_incorrect(TRUE, TABLE, n=10, seed=1)
    assert len(correct) == 3 and set(correct) <= {0, 1, 6, 7}
    assert sorted(wrong) == [2, 3, 4, 5]
    assert g.random_correct(TRUE, TABLE, n=3, seed=1) == correct
    assert g.random_incorrect(TRUE[[0, 1]], TABLE[[0, 1]], n=3) == []


def test_titles_name_prediction_probability_and_true_class() -> None:
    assert g.titles_for([1, 5], TRUE, TABLE, ["a", "b", "c"]) == ["a 0.950", "a 0.800\n(true c)"]


@pytest.fixture
def run_and_data(tmp_path: Path) -> tuple[Path, Path]:
    from imagefit.cli import cli

    data = make_folder(tmp_path / "data", n_train=4, n_valid=3)
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "--model", TINY_MODEL, "--weights", "none"]
    result = CliRunner().invoke(cli, [*args, "--engine", "torch", "-j", "0"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return run, data


def test_evaluate_end_to_end_reuses_the_features_of_training(run_and_data, monkeypatch) -> None:
    run, data = run_and_data
    calls = _count_forward_passes(monkeypatch)
    result = evaluate(run, data, **OPTIONS)
    out = run / "evaluation"
    saved = json.loads((out / "evaluation.json").read_text())
    with open(out / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    y_true = [Path(r["path"]).parent.name for r in rows]
    assert len(rows) == 6 and all(Path(r["path"]).parts[-3] == "valid" for r in rows)
    assert saved["accuracy"] == pytest.approx(skm.accuracy_score(y_true, [r["class"] for r in rows]))
    assert saved["accuracy"] == result["accuracy"] and saved["split"] == "valid"
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "confusion.txt").is_file()
    for name, entry in saved["galleries"].items():
        if entry["file"]:
            assert (out / entry["file"]).is_file() and entry["images"]
        else:
            assert entry["images"] == [] and not (out / f"gallery_{name}.png").exists()
    margins = [abs(float(r["p_blue"]) - float(r["p_red"])) for r in rows]
    assert saved["galleries"]["most_uncertain"]["images"][0] == rows[int(np.argmin(margins))]["path"]
    assert calls == []  # training cached the valid features: no second forward pass


def test_second_evaluation_of_new_images_computes_no_features(run_and_data, tmp_path, monkeypatch) -> None:
    run, _ = run_and_data
    folder = tmp_path / "fresh"
    for i, name in enumerate(("blue", "red", "blue", "red")):
        write_image(folder / name / f"{i}.png", COLOURS[name], seed=1000 + i)
    calls = _count_forward_passes(monkeypatch)
    first = evaluate(run, folder, out=tmp_path / "one", **OPTIONS)
    assert sum(calls) == 4 and first["n"] == 4
    calls.clear()
    second = evaluate(run, folder, out=tmp_path / "two", **OPTIONS)
    assert calls == [] and second["accuracy"] == first["accuracy"]
    assert second["per_class"]["red"]["support"] == 2


def test_unknown_class_is_a_one_line_data_error(run_and_data, tmp_path: Path) -> None:
    run, _ = run_and_data
    other = make_folder(tmp_path / "other", classes=("blue", "green"), n_train=1, n_valid=1)
    with pytest.raises(DataError, match="classes the model does not know: green") as err:
        evaluate(run, other / "valid", **OPTIONS)
    assert "\n" not in str(err.value)


def test_the_runs_own_split_folder_is_evaluated_on_its_validation_split(tmp_path: Path) -> None:
    import shutil

    from imagefit.data.folders import discover_dataset
    from imagefit.train import train

    data = tmp_path / "flat"
    for k, name in enumerate(("blue", "red")):
        for i in range(8):
            write_image(data / name / f"{i}.png", COLOURS[name], seed=300 + 10 * k + i)
    run = tmp_path / "run"
    train(data, model=TINY_MODEL, weights="none", out=run, valid_pct=0.25, seed=3, **OPTIONS)
    result = evaluate(run, data, **OPTIONS)
    valid = sorted(str(s.path) for s in discover_dataset(data, 0.25, 3).valid)
    assert result["n"] == 4 and sorted(result["galleries"]["most_uncertain"]["images"]) == valid
    shutil.copytree(data, tmp_path / "copy")
    assert evaluate(run, tmp_path / "copy", out=tmp_path / "all", **OPTIONS)["n"] == 16  # another folder: all
