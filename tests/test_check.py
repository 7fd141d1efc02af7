"""imagefit check on a generated folder of every bad kind: each verdict; --fix quarantines, never deletes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.data.check import MANIFEST, PROBLEMS_FOUND, check, default_quarantine
from imagefit.errors import DataError
from tests._corpus import write_corpus
from tests.conftest import make_folder, write_image


@pytest.fixture
def corpus(tmp_path: Path):
    return write_corpus(tmp_path / "data")


def _all_entries(*folders: Path) -> set[str]:
    """Names of every file and link under the folders (links not followed)."""
    names = set()
    for folder in folders:
        for _, _, filenames in os.walk(folder):
            names.update(filenames)
    return names


def test_each_bad_kind_is_named_with_its_reason(corpus) -> None:
    data, trained, skipped = corpus
    report = check(data)
    got = {p.path.name: p.kind for p in report.problems}
    assert got == skipped
    for p in report.problems:
        assert str(p.path) in p.problem  # the message names the file
    assert report.checked == 12 + 6 + len(trained) + len(skipped)  # good images + the corpus
    assert report.ignored == 1  # labels.csv; .DS_Store is hidden
    assert report.exit_code == PROBLEMS_FOUND
    assert report.dataset_error is None


def test_conversions_are_counted(corpus) -> None:
    data, _, _ = corpus
    converted = check(data).converted
    assert converted["CMYK converted to RGB"] == 2
    assert converted["palette image converted to RGB"] == 2
    assert converted["transparency laid on the background"] == 2  # rgba.png and palette_t.png
    assert converted["16-bit values scaled to 8 bits"] == 1
    assert converted["floating-point values scaled to 8 bits"] == 1
    assert converted["turned upright from its EXIF orientation"] == 1


def test_quick_check_finds_the_same_files(corpus) -> None:
    data, _, skipped = corpus
    assert {p.path.name: p.kind for p in check(data, quick=True).problems} == skipped


def test_fix_moves_bad_files_to_quarantine_and_deletes_nothing(corpus) -> None:
    data, trained, skipped = corpus
    jail = default_quarantine(data)
    before = _all_entries(data)
    report = check(data, fix=True)
    assert jail == data.parent / "data-quarantine"
    assert {src.name for src, _ in report.moved} == set(skipped)
    assert _all_entries(data) | _all_entries(jail) == before | {MANIFEST}
    assert not any((data / "train" / "red" / name).is_symlink() for name in skipped)
    assert (jail / "train" / "red" / "cut.jpg").stat().st_size > 0  # the same bytes, moved
    manifest = json.loads((jail / MANIFEST).read_text())
    assert {Path(m["from"]).name: m["kind"] for m in manifest} == skipped
    assert report.remaining == [] and report.exit_code == 0
    again = check(data)
    assert again.problems == [] and again.exit_code == 0
    assert again.checked == 12 + 6 + len(trained)


def test_second_fix_never_overwrites_the_quarantine(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "d", n_train=3, n_valid=2)
    jail = tmp_path / "jail"
    for round_ in range(2):
        (data / "train" / "red" / "bad.jpg").write_text(f"round {round_}")
        check(data, fix=True, quarantine=jail)
    kept = sorted(p.read_text() for p in (jail / "train" / "red").iterdir())
    assert kept == ["round 0", "round 1"]
    assert len(json.loads((jail / MANIFEST).read_text())) == 2


def test_quarantine_inside_the_dataset_is_not_checked(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "d", n_train=3, n_valid=2)
    (data / "train" / "red" / "bad.jpg").write_text("x")
    check(data, fix=True, quarantine=data / "quarantine")
    assert check(data, quarantine=data / "quarantine").exit_code == 0


def test_leakage_and_conflicts_are_warned(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "d", n_train=4, n_valid=2)
    red = data / "train" / "red" / "red_00.jpg"
    (data / "valid" / "red" / "copy.jpg").write_bytes(red.read_bytes())
    (data / "train" / "blue" / "mislabelled.jpg").write_bytes(red.read_bytes())
    report = check(data)
    assert report.exit_code == 0  # warnings do not fail the check
    lines = report.lines()
    assert any("leakage" in line and "copy.jpg" in line and "(train)" in line for line in lines)
    assert any("two classes" in line and "mislabelled.jpg" in line for line in lines)


def test_layout_error_is_reported_with_the_files(tmp_path: Path) -> None:
    data = tmp_path / "d"
    write_image(data / "train" / "cats" / "a.jpg", (1, 2, 3), 0)
    (data / "train" / "cats" / "b.jpg").write_bytes(b"")
    report = check(data)
    assert "only one class" in report.dataset_error
    assert [p.path.name for p in report.problems] == ["b.jpg"]
    assert report.exit_code == PROBLEMS_FOUND


def test_missing_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a folder"):
        check(tmp_path / "nowhere")


def test_cli_check_lines_and_exit_codes(corpus) -> None:
    data, _, skipped = corpus
    result = CliRunner().invoke(cli, ["check", str(data)])
    assert result.exit_code == PROBLEMS_FOUND, result.output
    errors = [line for line in result.stdout.splitlines() if ": error [" in line]
    assert len(errors) == len(skipped)
    assert any(line.endswith("empty file (0 bytes)") and "empty.jpg" in line for line in errors)
    assert "--fix" in result.stderr
    fixed = CliRunner().invoke(cli, ["check", str(data), "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.count("moved ") == len(skipped)
    assert CliRunner().invoke(cli, ["check", str(data)]).exit_code == 0


def test_background_option_reaches_every_decoder(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    from imagefit.data.images import open_image

    monkeypatch.setenv("IMAGEFIT_BACKGROUND", "white")  # restored after the test
    data = make_folder(tmp_path / "d", n_train=2, n_valid=1)
    result = CliRunner().invoke(cli, ["--background", "black", "check", str(data)])
    assert result.exit_code == 0, result.output
    assert os.environ["IMAGEFIT_BACKGROUND"] == "black"  # inherited by decode workers
    Image.new("RGBA", (2, 2), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert open_image(tmp_path / "clear.png").getpixel((0, 0)) == (0, 0, 0)
