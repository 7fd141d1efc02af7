"""Multi-label classification: the linear head, its thresholds, and a run from each table shape."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import imagefit
from imagefit.cli import cli
from imagefit.evaluate import evaluate
from imagefit.evaluate.multilabel_metrics import multilabel_scores
from imagefit.train.heads import fit_multilabel_head, sigmoid
from imagefit.train.multilabel.thresholds import best_thresholds
from tests.conftest import COLOURS, TINY_MODEL, write_image

TINY = {"model": TINY_MODEL, "weights": "none", "engine": "torch", "workers": 0, "progress": False}
LABELS = ("blue", "green", "red")
SETS = [("blue",), ("blue", "red"), ("green",), ("green", "red"), ("red",), ("blue", "green"), ("blue",)]


def test_thresholds_maximise_f1_on_the_given_probabilities() -> None:
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 1], [1, 0]])
    p = np.array([[0.9, 0.1], [0.6, 0.2], [0.4, 0.3], [0.1, 0.8], [0.45, 0.7]])
    t = best_thresholds(y, p)
    assert t[0] == pytest.approx((0.45 + 0.4) / 2)  # all three positives above, the negative below
    assert 0.3 < t[1] <= 0.8 and t[1] == pytest.approx(0.75)  # only the 0.8 is positive
    assert best_thresholds(np.zeros((3, 1), int), np.full((3, 1), 0.2))[0] == 0.5  # never positive


def test_the_head_fits_each_label_and_never_predicts_an_absent_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0.5, x[:, 2] + x[:, 3] > 0, np.zeros(90, bool)], 1).astype(int)
    head = fit_multilabel_head(x, y, seed=0, progress=False)
    proba = sigmoid(x @ head.weight.T + head.bias)
    scores = multilabel_scores(y, proba, head.thresholds)
    assert scores["micro_f1"] > 0.9 and scores["mAP"] > 0.95
    assert (proba[:, 3] < head.thresholds[3]).all()
    assert head.cv_loss and min(head.cv_loss, key=head.cv_loss.get) == head.C
    assert all(0 < t < 1 for t in head.thresholds[:3])


def _images(root: Path) -> dict[str, tuple[str, ...]]:
    """Two images per label set, coloured by the mean of their labels' colours."""
    out = {}
    for i, labels in enumerate(SETS * 2):
        colour = tuple(int(np.mean([COLOURS[x][k] for x in labels])) for k in range(3))
        write_image(root / f"im{i:02d}.png", colour, i, size=(24, 20))
        out[f"im{i:02d}"] = labels
    return out


def _write(path: Path, rows: list[list], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("multilabel")
    images = _images(root / "images")
    valid = {"im03", "im08", "im12"}
    tables = {
        "tags, spaces": _write(
            root / "images" / "tags.csv",
            [["image_name", "tags", "split"]]
            + [[f"{n}.png", " ".join(t), "valid" if n in valid else "train"] for n, t in images.items()],
        ),
        "tags, commas": _write(
            root / "images" / "quoted.csv",
            [["path", "labels", "is_valid"]]
            + [[f"{n}.png", ",".join(t), n in valid] for n, t in images.items()],
        ),
        "one-hot": _write(
            root / "onehot.tsv",
            [["image", *LABELS, "is_valid"]]
            + [[n, *(int(x in t) for x in LABELS), int(n in valid)] for n, t in images.items()],
            delimiter="\t",
        ),
    }
    return root, tables


@pytest.fixture(scope="module")
def runs(shapes) -> dict:
    root, tables = shapes
    results = {}
    for shape, table in tables.items():
        images = root / "images" if shape == "one-hot" else None
        results[shape] = imagefit.train(table, out=root / f"run-{shape}", images=images, **TINY)
    return results


def test_the_three_shapes_train_the_same_multilabel_run(shapes, runs) -> None:
    root, _ = shapes
    results = runs
    first = results["tags, spaces"]
    assert first.classifier.classes == list(LABELS) and first.classifier.multilabel
    assert first.metrics["valid"]["n"] == 3 and first.metrics["train"]["n"] == 11
    for result in results.values():
        assert result.classifier.classes == first.classifier.classes
        for split in ("train", "valid"):
            assert result.metrics[split] == pytest.approx(first.metrics[split], abs=1e-6)
        head, first_head = result.metrics["head"], first.metrics["head"]
        assert head["C"] == first_head["C"] and head["C_grid"] == first_head["C_grid"]
        assert head["thresholds"] == pytest.approx(first_head["thresholds"], abs=1e-5)
    config = imagefit.runs.read_config(root / "run-one-hot")
    assert config.task == "multilabel" and len(config.thresholds) == 3


def test_a_multilabel_run_predicts_label_sets_as_csv(shapes, runs) -> None:
    root, _ = shapes
    run = root / "run-tags, spaces"
    loaded = imagefit.load(run)
    preds = loaded.predict(root / "images", engine="torch", workers=0, progress=False)
    assert loaded.multilabel and preds.multilabel
    assert ((preds.probabilities >= 0) & (preds.probabilities <= 1)).all()
    expected = [[c for c, p, t in zip(LABELS, row, loaded.thresholds, strict=True) if p >= t]
                for row in preds.probabilities]  # fmt: skip
    assert preds.labels == expected
    out = root / "preds.csv"
    result = CliRunner().invoke(
        cli, ["predict", str(run), str(root / "images"), "--csv", str(out), "--threshold", "0.5", "-j", "0",
              "--engine", "torch"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["path", "labels", "familiarity", "unknown", "p_blue", "p_green", "p_red"]
    for row in rows[1:]:
        probs = [float(v) for v in row[4:]]
        assert row[1].split() == [c for c, p in zip(LABELS, probs, strict=True) if p >= 0.5]


def test_a_multilabel_run_is_evaluated_and_reported_per_label(shapes, runs) -> None:
    root, tables = shapes
    run = root / "run-tags, spaces"
    saved = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert saved["task"] == "multilabel" and saved["n"] == 3
    assert saved["samples_f1"] == pytest.approx(runs["tags, spaces"].metrics["valid"]["samples_f1"])
    html = (run / "report.html").read_text()
    assert 'id="per-label"' in html and "Precision-recall curves" in html and 'data-label="green"' in html
    again = evaluate(run, tables["tags, spaces"], out=root / "again", workers=0, engine="torch")
    assert again["samples_f1"] == pytest.approx(saved["samples_f1"]) and again["n"] == 3
    per = again["per_label"]
    assert set(per) == set(LABELS)
    truth = {"im03": ("green", "red"), "im08": ("blue", "red"), "im12": ("blue", "green")}
    for label in LABELS:
        support = sum(label in t for t in truth.values())
        assert per[label]["support"] == support == per[label]["true_positives"] + per[label]["misses"]
    everything = evaluate(run, tables["one-hot"], out=root / "all", workers=0, engine="torch")
    assert everything["n"] == 14  # another table: all its rows
