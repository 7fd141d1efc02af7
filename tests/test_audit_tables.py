"""imagefit audit and fix on label tables: a planted mislabel ranked first; fixes written to a copy."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from imagefit.audit import TableFix, audit, fix
from imagefit.audit.items import TABLE, labelled_images
from imagefit.cli import cli
from imagefit.errors import DataError
from tests.conftest import COLOURS, TINY_MODEL, write_image

TINY = {"model": TINY_MODEL, "weights": "none", "engine": "torch", "workers": 0, "progress": False}
PLANTED = "pics/red_planted.png"  # a red picture whose row says blue


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """labels.csv (path,label) over pics/: three colour classes of 8 images, one red image filed as blue."""
    rows, seed = [], 0
    for name, colour in COLOURS.items():
        for i in range(8):
            seed += 1
            write_image(tmp_path / "pics" / f"{name}_{i}.png", colour, seed)
            rows.append((f"pics/{name}_{i}.png", name))
    write_image(tmp_path / PLANTED, COLOURS["red"], 999)
    rows.append((PLANTED, "blue"))
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")  # CRLF: untouched rows must keep it
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return path


def test_a_table_is_audited_and_the_planted_mislabel_ranks_first(table: Path, tmp_path: Path) -> None:
    items = labelled_images(table)
    assert items.source == TABLE and items.root == table.parent and len(items.paths) == 25
    result = audit(table, tmp_path / "audit", duplicates="none", **TINY)
    first = result.of_kind("label_issue")[0]
    assert (first.path, first.given, first.suggested, first.rank) == (PLANTED, "blue", "red", 1)
    assert result.summary["data"] == str(table.resolve()) and result.summary["label_source"] == TABLE
    rows = list(csv.DictReader((tmp_path / "audit" / "audit.csv").open()))
    assert rows[0]["path"] == PLANTED and rows[0]["kind"] == "label_issue"


def test_audit_cli_reads_a_table_with_its_options(table: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere.csv"
    moved.write_text(table.read_text().replace("path,label", "file,colour"))
    args = ["audit", str(moved), "--out", str(tmp_path / "a"), "--path-col", "file", "--label-col", "colour"]
    result = CliRunner().invoke(cli, [*args, "--images", str(tmp_path), "-m", TINY_MODEL, "--weights", "none",
                                      "--engine", "torch", "-j", "0", "--duplicates", "none"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"#1 {PLANTED}: blue -> red" in result.output


def test_a_multilabel_table_is_audited_with_the_planted_error_first(tmp_path: Path) -> None:
    """Single colours tagged with their colour, red+blue halves tagged both; a red image tagged blue."""
    rows, seed = [], 0
    for name, colour in COLOURS.items():
        for i in range(6):
            seed += 1
            rows.append((write_image(tmp_path / f"{name}_{i}.png", colour, seed).name, name))
    for i in range(4):
        path = tmp_path / f"both_{i}.png"
        write_image(path, COLOURS["red"], 100 + i)
        half = Image.open(path).convert("RGB")
        blue = Image.open(write_image(tmp_path / "x.png", COLOURS["blue"], 200 + i))
        half.paste(blue.crop((24, 0, 48, 40)), (24, 0))
        half.save(path)
        rows.append((path.name, "blue red"))
    (tmp_path / "x.png").unlink()
    write_image(tmp_path / "planted.png", COLOURS["red"], 999)
    rows.append(("planted.png", "blue"))
    (tmp_path / "tags.csv").write_text("image,tags\n" + "".join(f"{a},{b}\n" for a, b in rows))
    result = audit(tmp_path / "tags.csv", tmp_path / "audit", duplicates="none", **TINY)
    first = result.of_kind("label_issue")[0]
    assert (first.path, first.given, first.rank) == ("planted.png", "blue", 1)
    assert "red" in first.suggested.split()
    assert result.summary["task"] == "multilabel" and result.summary["settings"]["folds"] == 3


def _fixes(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "action", "label"), *rows])
    return path


def test_fix_writes_a_corrected_copy_and_leaves_the_table_alone(table: Path, tmp_path: Path) -> None:
    before = table.read_bytes()
    fixes = _fixes(tmp_path / "fixes.csv", [(PLANTED, "relabel", "red"), ("pics/green_3.png", "remove", ""),
                                            ("pics/blue_1.png", "keep", "")])  # fmt: skip
    result = fix(table, fixes)
    assert isinstance(result, TableFix) and result.table == tmp_path / "labels.fixed.csv"
    assert (result.relabelled, result.removed, result.kept) == (1, 1, 1)
    assert table.read_bytes() == before
    expected = before.replace(f"{PLANTED},blue\r\n".encode(), f"{PLANTED},red\r\n".encode())
    expected = expected.replace(b"pics/green_3.png,green\r\n", b"")
    assert result.table.read_bytes() == expected and expected != before
    assert len(labelled_images(result.table).paths) == 24


def test_fix_cli_on_a_table_says_where_the_copy_went(table: Path, tmp_path: Path) -> None:
    fixes = _fixes(tmp_path / "fixes.csv", [(str(tmp_path / PLANTED), "relabel", "red")])  # absolute path
    out = tmp_path / "out" / "clean.csv"
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(cli, ["fix", str(table), str(fixes), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 1 row(s) relabelled, 0 removed" in result.output
    assert f"{PLANTED},red" in out.read_text() and f"{PLANTED},blue" in table.read_text()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("pics/absent.png", "remove", ""),
            r"line 3 \(pics/absent.png\): no row of .*labels.csv names this image",
        ),
        ((PLANTED, "relabel", "purple"), r"line 3 .*unknown label 'purple' \(labels: blue, green, red\)"),
    ],
)
def test_a_bad_fixes_row_is_named_and_nothing_is_written(table: Path, tmp_path: Path, row, message) -> None:
    fixes = _fixes(tmp_path / "fixes.csv", [("pics/red_0.png", "remove", ""), row])
    with pytest.raises(DataError, match=message):
        fix(table, fixes)
    assert not (tmp_path / "labels.fixed.csv").exists()


@pytest.mark.parametrize(
    ("text", "label", "expected"),
    [
        ("image,tags\na.png,red\nb.png,blue red\n", "blue red", "image,tags\na.png,blue red\n"),
        ("image,blue,red\na.png,0,1\nb.png,1,1\n", "blue", "image,blue,red\na.png,1,0\n"),
    ],
)
def test_fix_relabels_a_multilabel_table_in_its_own_shape(tmp_path: Path, text, label, expected) -> None:
    table = tmp_path / "tags.csv"
    table.write_text(text)
    fixes = _fixes(tmp_path / "fixes.csv", [("a.png", "relabel", label), ("b.png", "remove", "")])
    fix(table, fixes)
    assert (tmp_path / "tags.fixed.csv").read_text() == expected and table.read_text() == text
