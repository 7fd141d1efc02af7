"""The dataset scan before training: counts, files to skip, imbalance, leakage and copies by content."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from imagefit.data import scan as scan_module
from imagefit.data.folders import discover_dataset
from imagefit.data.scan import report_dataset, scan_dataset
from tests.conftest import make_folder, write_image


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())


def test_clean_folder_has_nothing_to_say(tmp_path: Path) -> None:
    scan = scan_dataset(discover_dataset(make_folder(tmp_path / "d", n_train=3, n_valid=2)))
    assert scan.warnings() == []
    assert scan.summary().endswith("scan: every image readable, no duplicates")
    assert "train: 6 images (blue 3, red 3)" in scan.summary()


@pytest.mark.parametrize(("n_blue", "warned"), [(5, False), (6, True)])
def test_imbalance_from_three_to_one(tmp_path: Path, n_blue: int, warned: bool) -> None:
    data = make_folder(tmp_path / "d", n_train=2, n_valid=1)
    for i in range(n_blue - 2):
        write_image(data / "train" / "blue" / f"more_{i}.jpg", (30, 60, 220), 900 + i)
    for i in range(3):  # unreadable files do not count: red stays at 2 usable images
        (data / "train" / "red" / f"broken_{i}.jpg").write_bytes(b"")
    scan = scan_dataset(discover_dataset(data))  # blue n_blue, red 2: a ratio of 2.5 or 3.0
    lopsided = scan.imbalance()
    assert (lopsided is not None) is warned
    if warned:
        assert lopsided == ("blue", 6, "red", 2)
        expected = "class imbalance in train: blue has 6 images, red 2 (3.0 : 1)"
        assert any(expected in w for w in scan.warnings())


def test_leaks_copies_and_conflicts_are_told_apart(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "d", n_train=3, n_valid=2)
    red0 = data / "train" / "red" / "red_00.jpg"
    _copy(red0, data / "valid" / "red" / "leaked.jpg")  # train -> valid: leakage
    _copy(red0, data / "test" / "leaked_test.jpg")  # train -> test: leakage too
    _copy(red0, data / "train" / "red" / "again.jpg")  # same class, same split: a copy
    _copy(data / "valid" / "blue" / "blue_00.jpg", data / "valid" / "red" / "which.jpg")  # two classes
    scan = scan_dataset(discover_dataset(data))
    assert sorted(b.name for _, b in scan.leaks) == ["leaked.jpg", "leaked_test.jpg"]
    assert scan.copies == 1
    assert [(a.name, b.name) for a, b in scan.conflicts] == [("blue_00.jpg", "which.jpg")]
    expected = "2 file(s) in valid/test also in train; 1 file(s) in two classes; 1 duplicate file(s) within"
    assert expected in scan.summary()


def test_long_lists_are_cut_with_a_pointer_to_check(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(scan_module, "SHOWN", 2)
    data = make_folder(tmp_path / "d", n_train=2, n_valid=1)
    for i in range(5):
        (data / "train" / "red" / f"bad_{i}.jpg").write_bytes(b"")  # red: 2 usable, as many as blue
    warnings = scan_dataset(discover_dataset(data)).warnings()
    assert len(warnings) == 3
    assert warnings[-1] == "... and 3 more unreadable files (imagefit check DATA lists them all)"


def test_report_logs_summary_and_warnings(tmp_path: Path, caplog) -> None:
    data = make_folder(tmp_path / "d", n_train=2, n_valid=1)
    (data / "train" / "red" / "empty.jpg").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="imagefit"):
        report_dataset(discover_dataset(data))
    levels = {r.levelno for r in caplog.records if "empty.jpg: empty file" in r.getMessage()}
    assert levels == {logging.WARNING}
    assert any("scan: 1 file(s) to skip" in r.getMessage() for r in caplog.records)
