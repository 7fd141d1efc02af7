"""imagefit fix moves, never deletes, checks every row first; --undo restores all bytes, even after a kill."""

from __future__ import annotations

import csv
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.audit import fix, undo
from imagefit.audit.fix import PAUSE_ENV
from imagefit.audit.journal import read_journal
from imagefit.cli import cli
from imagefit.data.exclude import drop_excluded
from imagefit.data.folders import discover_dataset
from imagefit.errors import DataError
from tests.conftest import COLOURS, make_folder, write_image

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under the folders: relative path -> bytes."""
    out = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out[f"{folder.name}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    return out


def _fixes(path: Path, rows: list[tuple[str, str, str]], extra: dict | None = None) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "action", "label", *(extra or {})])
        for row in rows:
            writer.writerow([*row, *(extra or {}).values()])
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "data", classes=("blue", "red", "green"), n_train=4, n_valid=2)


def _quarantine(data: Path) -> Path:
    return data.parent / f"{data.name}-quarantine"


def test_fix_moves_then_undo_restores_every_byte(data: Path, tmp_path: Path) -> None:
    before = _snapshot(data)
    fixes = _fixes(
        tmp_path / "fixes.csv",
        [
            ("train/blue/blue_00.jpg", "relabel", "red"),
            ("valid/red/red_01.jpg", "remove", ""),
            ("train/green/green_02.jpg", "keep", ""),
            ("train/red/red_03.jpg", "", ""),
        ],
    )
    result = fix(data, fixes)
    assert (data / "train/red/blue_00.jpg").read_bytes() == before["data/train/blue/blue_00.jpg"]
    assert not (data / "train/blue/blue_00.jpg").exists() and not (data / "valid/red/red_01.jpg").exists()
    assert (_quarantine(data) / "valid/red/red_01.jpg").read_bytes() == before["data/valid/red/red_01.jpg"]
    assert len(result.moves) == 2 and result.kept == 1
    assert read_journal(result.journal).state == "applied"
    undo(result.journal)
    assert _snapshot(data) == before
    assert not _quarantine(data).exists()  # the folders the fix made are gone again
    assert read_journal(result.journal).state == "undone"


def test_audit_csv_with_edited_actions_is_a_fixes_file(data: Path, tmp_path: Path) -> None:
    header = ["kind", "path", "given", "suggested", "score", "rank", "action", "label", "note"]
    audit_csv = tmp_path / "audit.csv"
    with open(audit_csv, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerow(
            ["label_issue", "train/blue/blue_01.jpg", "blue", "green", "0.01", "1", "relabel", "", ""]
        )
        writer.writerow(["label_issue", "train/red/red_01.jpg", "red", "blue", "0.02", "2", "", "", ""])
        writer.writerow(["outlier", "valid/green/green_00.jpg", "green", "", "0.1", "1", "remove", "", ""])
    fix(data, audit_csv)
    assert (data / "train/green/blue_01.jpg").is_file()  # the suggested label, as no label was given
    assert (data / "train/red/red_01.jpg").is_file()  # no action: left alone
    assert (_quarantine(data) / "valid/green/green_00.jpg").is_file()


def test_kaggle_names_are_relabelled_by_renaming(tmp_path: Path) -> None:
    for name, first in (("cat", 0), ("dog", 10)):
        for i in range(first, first + 3):
            write_image(tmp_path / "kaggle" / f"{name}.{i}.png", COLOURS["red"], i)
    result = fix(tmp_path / "kaggle", _fixes(tmp_path / "f.csv", [("cat.1.png", "relabel", "dog")]))
    assert (tmp_path / "kaggle/dog.1.png").is_file() and not (tmp_path / "kaggle/cat.1.png").exists()
    undo(result.journal)
    assert (tmp_path / "kaggle/cat.1.png").is_file() and not (tmp_path / "kaggle/dog.1.png").exists()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("train/blue/missing.jpg", "remove", ""), r"line 3 \(train/blue/missing.jpg\): no such file"),
        (("train/blue/blue_02.jpg", "relabel", "purple"), r"line 3 .*unknown label 'purple'"),
        (("train/blue/blue_02.jpg", "explode", ""), r"line 3: unknown action 'explode'"),
        (("../elsewhere.jpg", "remove", ""), r"line 3 \(\.\./elsewhere.jpg\): no such file"),
        (("train/blue/blue_00.jpg", "remove", ""), r"line 3 .*second row for the same file"),
    ],
)
def test_a_bad_row_is_named_and_nothing_moves(data: Path, tmp_path: Path, row, message) -> None:
    before = _snapshot(data)
    fixes = _fixes(tmp_path / "fixes.csv", [("train/blue/blue_00.jpg", "relabel", "red"), row])
    with pytest.raises(DataError, match=message):
        fix(data, fixes)
    assert _snapshot(data) == before and not _quarantine(data).exists()
    assert not Path(f"{fixes}.journal").exists()


def test_a_relabel_onto_an_existing_name_is_refused(data: Path, tmp_path: Path) -> None:
    write_image(data / "train/red/blue_00.jpg", COLOURS["red"], 99)
    before = _snapshot(data)
    with pytest.raises(DataError, match=r"line 2 .*already exists"):
        fix(data, _fixes(tmp_path / "f.csv", [("train/blue/blue_00.jpg", "relabel", "red")]))
    assert _snapshot(data) == before


def test_a_second_fix_of_an_applied_journal_is_refused(data: Path, tmp_path: Path) -> None:
    fixes = _fixes(tmp_path / "fixes.csv", [("train/blue/blue_00.jpg", "remove", "")])
    result = fix(data, fixes)
    after = _snapshot(data)
    with pytest.raises(DataError, match=r"already applied.*--undo"):
        fix(data, fixes)
    assert _snapshot(data) == after
    undo(result.journal)
    with pytest.raises(DataError, match="already undone"):
        undo(result.journal)


def test_a_read_only_data_folder_is_refused_before_anything_moves(data: Path, tmp_path: Path) -> None:
    before = _snapshot(data)
    folders = [p for p in [data, *data.rglob("*")] if p.is_dir()]
    for folder in folders:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        fixes = _fixes(tmp_path / "fixes.csv", [("train/blue/blue_00.jpg", "relabel", "red")])
        with pytest.raises(DataError, match=r"read-only.*nothing was moved"):
            fix(data, fixes)
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert _snapshot(data) == before


def test_undo_after_a_kill_in_the_middle_restores_every_byte(data: Path, tmp_path: Path) -> None:
    before = _snapshot(data)
    rows = [(f"train/{c}/{c}_{i:02d}.jpg", "remove", "") for c in ("blue", "red") for i in range(4)]
    rows += [(f"valid/{c}/{c}_00.jpg", "relabel", "green") for c in ("blue", "red")]
    fixes = _fixes(tmp_path / "fixes.csv", rows)
    env = {**os.environ, PAUSE_ENV: "0.3", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "imagefit", "fix", str(data), str(fixes)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (_quarantine(data) / "train/blue/blue_01.jpg").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    moved = sum(not (data / r[0]).exists() for r in rows)
    assert 2 <= moved < len(rows)  # killed mid-way
    assert read_journal(f"{fixes}.journal").state is None
    result = CliRunner().invoke(cli, ["fix", "--undo", f"{fixes}.journal"])
    assert result.exit_code == 0, result.output
    assert f"put back {moved} file(s)" in result.output
    assert _snapshot(data) == before
    again = CliRunner().invoke(cli, ["fix", str(data), str(fixes)])  # the journal was undone: allowed
    assert again.exit_code == 0, again.output


def test_fix_cli_needs_data_and_fixes_or_undo(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["fix", str(tmp_path)])
    assert result.exit_code == 2 and "--undo JOURNAL" in result.output
    result = CliRunner().invoke(cli, ["fix", "--undo", str(tmp_path / "nope.journal")])
    assert result.exit_code == 2 and "no such journal" in result.output


def test_exclude_leaves_listed_images_out_without_touching_files(data: Path, tmp_path: Path) -> None:
    listed = _fixes(
        tmp_path / "audit.csv",
        [
            ("train/blue/blue_00.jpg", "", ""),
            ("valid/red/red_00.jpg", "remove", ""),
            ("train/red/red_01.jpg", "keep", ""),
        ],
    )
    before = _snapshot(data)
    dataset = drop_excluded(discover_dataset(data), listed)
    names = {s.path.relative_to(data).as_posix() for s in dataset.train + dataset.valid}
    assert len(names) == 18 - 2
    assert "train/blue/blue_00.jpg" not in names and "valid/red/red_00.jpg" not in names
    assert "train/red/red_01.jpg" in names  # keep: stays in
    plain = tmp_path / "list.txt"
    plain.write_text("# left out\ntrain/green/green_00.jpg\n" + str(data / "train/green/green_01.jpg") + "\n")
    dataset = drop_excluded(discover_dataset(data), plain)
    assert len(dataset.train) == 12 - 2
    assert _snapshot(data) == before


def test_train_exclude_trains_without_the_listed_images(tmp_path: Path, monkeypatch) -> None:
    from tests.conftest import TINY_MODEL

    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "cache"))
    data = make_folder(tmp_path / "data")
    listed = tmp_path / "out.txt"
    listed.write_text("train/blue/blue_00.jpg\ntrain/red/red_00.jpg\nvalid/red/red_01.jpg\n")
    tiny = ["-m", TINY_MODEL, "--weights", "none", "--engine", "torch", "-j", "0"]
    args = ["train", str(data), "--out", str(tmp_path / "run"), "--exclude", str(listed), *tiny]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "train: accuracy" in result.output and "(18 images)" in result.output
    assert "valid: accuracy" in result.output and "(7 images)" in result.output
    assert (data / "train/blue/blue_00.jpg").is_file()
    scratch = [
        "--strategy",
        "scratch",
        "--arch",
        "conv4@3-pool2-dense8",
        "--image-size",
        "16",
        "--epochs",
        "1",
    ]
    other = [*args[:2], "--out", str(tmp_path / "scratch"), "--exclude", str(listed), "-j", "0", *scratch]
    result = CliRunner().invoke(cli, other)
    assert result.exit_code == 0, result.output
    assert "(18 images)" in result.output and "(7 images)" in result.output
