"""imagefit audit: planted label errors, outliers, duplicates, leakage and a broken file are all found."""

from __future__ import annotations

import csv
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from imagefit.audit import audit, label_issue_count, mislabelled_count
from imagefit.audit.duplicates import CROSS_CLASS, LEAKAGE, NEAR_DUPLICATE, classify_groups
from imagefit.audit.items import FOLDER, NAME, labelled_images
from imagefit.audit.labels import choose_folds, label_issues
from imagefit.audit.outliers import flag_outliers, outlier_scores
from imagefit.cli import cli
from imagefit.errors import DataError
from tests.conftest import COLOURS, TINY_MODEL, write_image

TINY = {"model": TINY_MODEL, "weights": "none", "engine": "torch", "workers": 0, "progress": False}


def _blobs(n_classes=3, per_class=40, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (n_classes, dim))
    y = np.repeat(np.arange(n_classes), per_class)
    return centres[y] + rng.normal(0, 1, (len(y), dim)), y


def _plant(y: np.ndarray, n: int, n_classes: int, seed=1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    planted = rng.choice(len(y), n, replace=False)
    noisy = y.copy()
    noisy[planted] = (y[planted] + rng.integers(1, n_classes, n)) % n_classes
    return noisy, planted


def test_planted_label_errors_rank_first() -> None:
    x, y = _blobs()
    noisy, planted = _plant(y, 6, 3)
    issues = label_issues(x, noisy, ["a", "b", "c"], folds=5, seed=0)
    assert set(issues.indices[:6]) == set(planted)
    assert set(np.flatnonzero(issues.flagged)) >= set(planted)
    assert set(np.argsort(issues.quality)[:6]) == set(planted)
    assert (issues.suggested[planted] == y[planted]).all()  # the true class is suggested
    assert issues.folds == 5 and issues.probabilities.shape == (120, 3)


def test_label_issue_count_counts_planted_errors() -> None:
    _, y = _blobs()
    noisy, _ = _plant(y, 6, 3)
    onehot = np.eye(3)[y] * 0.9 + 0.1 / 3  # probabilities that believe the true classes
    assert label_issue_count(onehot, noisy) == 6
    assert label_issue_count(onehot, y) == 0
    assert label_issue_count(onehot[:, :1].repeat(3, 1), np.zeros(120, int)) == 0  # one class: nothing


def test_mislabelled_count_for_the_train_hint() -> None:
    x, y = _blobs()
    noisy, _ = _plant(y, 6, 3)
    assert 4 <= mislabelled_count(x, noisy, 3, c=1.0) <= 8
    assert mislabelled_count(x, y, 3, c=1.0) <= 1
    assert mislabelled_count(x[:41], y[:41], 3, c=1.0) == 0  # a class of one image: no folds, no count


def test_fewer_folds_with_a_warning_when_a_class_is_small(caplog) -> None:
    y = np.array([0] * 10 + [1] * 3)
    with caplog.at_level(logging.WARNING, logger="imagefit"):
        assert choose_folds(y, ["big", "small"], 5) == 3
    assert "small" in caplog.text and "3 folds instead of 5" in caplog.text
    assert choose_folds(np.array([0] * 6 + [1] * 6), ["a", "b"], 5) == 5


def test_a_class_of_one_image_is_refused_with_what_is_needed() -> None:
    with pytest.raises(DataError, match=r"class lonely has 1 image.*at least 2"):
        choose_folds(np.array([0] * 10 + [1]), ["many", "lonely"], 5)
    with pytest.raises(DataError, match="two classes"):
        choose_folds(np.zeros(5, int), ["only"], 5)


def test_a_far_image_is_the_one_outlier() -> None:
    x, _ = _blobs(per_class=30)
    x = np.vstack([x, -40 * np.ones(x.shape[1])])
    scores = outlier_scores(x)
    assert list(flag_outliers(scores)) == [len(x) - 1]
    x2, _ = _blobs(per_class=30, seed=3)
    assert len(flag_outliers(outlier_scores(x2))) <= int(0.02 * len(x2))  # clean data: at most the cap


def test_duplicate_groups_are_sorted_into_kinds(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split, name in [("train", "a"), ("train", "b"), ("valid", "a"), ("valid", "b")]:
        for i in range(3):
            write_image(root / split / name / f"{name}{i}.png", COLOURS["red"], i)
    items = labelled_images(root)
    t, v = root / "train", root / "valid"
    groups = [
        [t / "a/a0.png", v / "a/a0.png"],
        [t / "a/a1.png", t / "b/b1.png"],
        [t / "a/a2.png", t / "a/a1.png"],
    ]
    kinds = {c.path.relative_to(root).as_posix(): c.kind for c in classify_groups(groups, items, {})}
    assert kinds == {
        "valid/a/a0.png": LEAKAGE,
        "train/b/b1.png": CROSS_CLASS,
        "train/a/a2.png": NEAR_DUPLICATE,
    }


def test_label_source_is_folder_or_name(tmp_path: Path) -> None:
    for name in ("cat", "dog"):
        for i in range(3):
            write_image(tmp_path / "kaggle" / f"{name}.{i}.png", COLOURS["red"], i)
            write_image(tmp_path / "folders" / name / f"{i}.png", COLOURS["red"], i)
    assert labelled_images(tmp_path / "kaggle").source == NAME
    assert labelled_images(tmp_path / "folders").source == FOLDER


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, set[str]]:
    """Three colour classes, two images filed in the wrong class, a copy across splits, a broken file."""
    root, seed = tmp_path / "data", 0
    for split, n in (("train", 10), ("valid", 3)):
        for name in COLOURS:
            for i in range(n):
                seed += 1
                write_image(root / split / name / f"{name}_{i:02d}.png", COLOURS[name], seed)
    wrong = {"train/blue/red_planted.png": "red", "train/green/blue_planted.png": "blue"}
    for rel, colour in wrong.items():
        write_image(root / rel, COLOURS[colour], 1000 + len(rel))
    shutil.copy(root / "train/red/red_03.png", root / "valid/red/copy_of_red_03.png")
    (root / "train/red/broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root, set(wrong)


def test_audit_finds_what_was_planted(planted, tmp_path: Path) -> None:
    root, wrong = planted
    result = audit(root, tmp_path / "audit", **TINY)
    labels = result.of_kind("label_issue")
    assert {f.path for f in labels[:2]} == wrong
    assert {f.suggested for f in labels[:2]} == {"red", "blue"}
    leaks = result.of_kind("leakage")
    assert [(f.path, f.note) for f in leaks] == [
        ("valid/red/copy_of_red_03.png", "like train/red/red_03.png")
    ]
    assert leaks[0].score == pytest.approx(1.0, abs=1e-4)
    assert [f.path for f in result.of_kind("unusable")] == ["train/red/broken.png"]
    rows = list(csv.DictReader((tmp_path / "audit" / "audit.csv").open()))
    assert list(rows[0]) == ["kind", "path", "given", "suggested", "score", "rank", "action", "label", "note"]
    assert rows[0]["kind"] == "label_issue" and rows[0]["rank"] == "1"
    summary = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert summary["counts"]["leakage"] == 1 and summary["images"] == 43  # 39 + 2 planted + the copy + broken
    assert summary["embedded"] == 42 and summary["settings"]["folds"] == 5


def test_audit_page_is_self_contained(planted, tmp_path: Path) -> None:
    root, wrong = planted
    audit(root, tmp_path / "audit", **TINY)
    html = (tmp_path / "audit" / "audit.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(r.startswith(("data:image/jpeg;base64,", "#")) for r in refs)
    assert sum(r.startswith("data:") for r in refs) >= 4  # 2 label errors + the leak's pair
    assert "<script" not in html and "url(" not in html
    first = html.index('id="label_issue"')
    assert all(html.index(f'data-path="{p}"', first) > first for p in wrong)


def test_audit_cli_prints_counts_and_top_errors(planted, tmp_path: Path) -> None:
    root, wrong = planted
    args = ["audit", str(root), "--out", str(tmp_path / "a"), "-m", TINY_MODEL, "--weights", "none"]
    result = CliRunner().invoke(cli, [*args, "--engine", "torch", "-j", "0"])
    assert result.exit_code == 0, result.output
    assert "label_issue:" in result.output and "leakage: 1" in result.output
    assert all(p in result.output for p in wrong)


def test_audit_of_a_one_class_folder_says_what_is_needed(tmp_path: Path) -> None:
    for i in range(4):
        write_image(tmp_path / "one" / "cats" / f"{i}.png", COLOURS["red"], i)
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "one"), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2
    assert "only one class" in result.output and "at least two" in result.output
