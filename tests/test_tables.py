"""Label tables (CSV, TSV, DataFrame): the three shapes, image names, splits, and every bad input."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.data.folders import discover_dataset
from imagefit.data.sources import read_dataset
from imagefit.data.table_dataset import table_dataset
from imagefit.errors import DataError, OptionError
from tests.conftest import COLOURS, TINY_MODEL, make_folder, write_image

TINY = {"model": TINY_MODEL, "weights": "none", "engine": "torch"}
# image -> labels, validation or not: six images, several labels each, one label-free
TAGS = {
    "a0": ("blue", "red"),
    "a1": ("blue",),
    "a2": ("green", "red"),
    "a3": ("blue", "green", "red"),
    "a4": ("red",),
    "a5": ("blue", "green"),
    "a6": ("green",),
    "a7": (),
}
VALID = {"a5", "a6"}


def _write(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """tmp/images/<name>.png for the names of TAGS."""
    for i, name in enumerate(TAGS):
        write_image(tmp_path / "images" / f"{name}.png", COLOURS["blue"], i, size=(8, 8))
    return tmp_path / "images"


def _tags_table(path: Path, delim: str, names=lambda n: f"{n}.png") -> Path:
    rows = [[names(n), delim.join(t), str(n in VALID).lower()] for n, t in TAGS.items()]
    return _write(path, ["image_name", "tags", "is_valid"], rows)


def _one_hot_table(path: Path) -> Path:
    labels = ["blue", "green", "red"]
    rows = [[n, *(int(x in t) for x in labels), int(n in VALID)] for n, t in TAGS.items()]
    return _write(path, ["image", *labels, "is_valid"], rows, delimiter="\t")


def _content(ds) -> tuple:
    pairs = lambda split: [(s.path.name, s.labels, s.label) for s in getattr(ds, split)]  # noqa: E731
    return ds.classes, ds.task, pairs("train"), pairs("valid")


# --- the three shapes ----------------------------------------------------------------------


@pytest.mark.parametrize("delim", [" ", ";", "|", ","])
def test_tags_and_one_hot_tables_give_the_same_dataset(tmp_path: Path, images: Path, delim: str) -> None:
    tags = table_dataset(_tags_table(images / "tags.csv", delim))
    one_hot = table_dataset(_one_hot_table(tmp_path / "labels.tsv"), images=images)  # names without .png
    assert _content(tags) == _content(one_hot)
    classes, task, train, valid = _content(tags)
    assert classes == ["blue", "green", "red"] and task == "multilabel"
    assert [name for name, _, _ in valid] == ["a5.png", "a6.png"]
    assert dict((n, x) for n, x, _ in train)["a3.png"] == (0, 1, 2)
    assert dict((n, x) for n, x, _ in train)["a7.png"] == ()  # no labels: allowed in multi-label
    assert "one-hot" in one_hot.layout and "path,tags" in tags.layout
    assert "1 without labels" in tags.describe()


def test_a_dataframe_reads_like_its_csv(images: Path) -> None:
    path = _tags_table(images / "tags.csv", " ")
    frame = pd.read_csv(path)
    assert _content(table_dataset(frame, images=images)) == _content(table_dataset(path))


def test_the_understood_shape_is_logged(images: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="imagefit"):
        table_dataset(_tags_table(images / "tags.csv", "|"))
    assert "images in column 'image_name', path,tags: labels in column 'tags' separated by '|'" in caplog.text


def test_label_delim_none_keeps_a_cell_one_label(tmp_path: Path) -> None:
    for i, name in enumerate(["x0", "x1", "x2", "x3"]):
        write_image(tmp_path / f"{name}.png", COLOURS["red"], i, size=(8, 8))
    rows = [
        ["x0.png", "golden retriever"],
        ["x1.png", "pug"],
        ["x2.png", "pug"],
        ["x3.png", "golden retriever"],
    ]
    table = _write(tmp_path / "t.csv", ["path", "label"], rows)
    assert table_dataset(table, valid_pct=0.5).task == "multilabel"  # the space was taken as a separator
    ds = table_dataset(table, valid_pct=0.5, label_delim="none")
    assert ds.classes == ["golden retriever", "pug"] and ds.task == "single"


# --- single-label tables are folders -------------------------------------------------------------


def test_a_single_label_table_splits_as_its_folders(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "data", classes=("blue", "red", "green"), n_train=5, n_valid=0)
    folders = discover_dataset(data / "train", valid_pct=0.4, seed=3)
    rows = [[str(p.relative_to(data)), p.parent.name] for p in sorted((data / "train").rglob("*.jpg"))]
    written = _write(tmp_path / "labels.csv", ["file", "label"], rows)
    table = table_dataset(written, images=data, valid_pct=0.4, seed=3)
    assert table.classes == folders.classes and table.task == "single"
    for split in ("train", "valid"):
        assert [(s.path.resolve(), s.label) for s in getattr(table, split)] == [
            (s.path.resolve(), s.label) for s in getattr(folders, split)
        ]


def test_a_single_label_table_trains_the_same_run_as_its_folders(tmp_path: Path) -> None:
    import imagefit

    data = make_folder(tmp_path / "data", n_train=4, n_valid=2)
    rows = [
        [str(p.relative_to(data)), p.parent.name, p.parts[-3] == "valid"] for p in sorted(data.rglob("*.jpg"))
    ]
    table = _write(tmp_path / "tables" / "labels.csv", ["path", "label", "is_valid"], rows)
    folder_run = imagefit.train(data, out=tmp_path / "folder_run", progress=False, workers=0, **TINY)
    args = ["train", str(table), "--images", str(data), "--out", str(tmp_path / "table_run"), "-j", "0"]
    args += ["--model", TINY_MODEL, "--weights", "none", "--engine", "torch"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "table_run" / "metrics.json").read_text())
    config = json.loads((tmp_path / "table_run" / "config.json").read_text())
    assert config["classes"] == folder_run.classifier.classes == ["blue", "red"]
    assert config["options"]["images"] == str(data)
    for split in ("train", "valid"):
        assert metrics[split]["n"] == folder_run.metrics[split]["n"] == (8 if split == "train" else 4)
        assert metrics[split]["loss"] == pytest.approx(folder_run.metrics[split]["loss"], abs=1e-6)
        assert metrics[split]["accuracy"] == folder_run.metrics[split]["accuracy"]
    from imagefit.evaluate import evaluate

    evaluated = evaluate(tmp_path / "table_run", table, out=tmp_path / "eval", workers=0, engine="torch")
    assert evaluated["n"] == 4 and evaluated["accuracy"] == metrics["valid"]["accuracy"]
    assert sorted(evaluated["per_class"]) == ["blue", "red"]
    refused = CliRunner().invoke(
        cli, ["predict", str(tmp_path / "table_run"), str(data), "--threshold", "0.3"]
    )
    assert refused.exit_code == 2 and "applies to multi-label models" in refused.output


# --- image names ----------------------------------------------------------------------------


def test_names_without_extension_or_folder_find_their_image(tmp_path: Path) -> None:
    blue = write_image(tmp_path / "imgs" / "blue" / "b0.jpg", COLOURS["blue"], 1, size=(8, 8))
    red = write_image(tmp_path / "imgs" / "red" / "r0.png", COLOURS["red"], 2, size=(8, 8))
    red1 = write_image(tmp_path / "imgs" / "red" / "r1.bmp", COLOURS["red"], 3, size=(8, 8))
    rows = [["b0", "blue", "0"], ["r0.png", "red", "0"], ["red/r1", "red", "1"]]
    ds = table_dataset(
        _write(tmp_path / "t.csv", ["id", "label", "is_valid"], rows), images=tmp_path / "imgs"
    )
    assert [s.path for s in ds.train] == [blue, red] and [s.path for s in ds.valid] == [red1]


def test_a_name_matching_two_images_is_an_error_naming_both(tmp_path: Path) -> None:
    a = write_image(tmp_path / "imgs" / "x" / "b0.jpg", COLOURS["blue"], 1, size=(8, 8))
    b = write_image(tmp_path / "imgs" / "y" / "b0.png", COLOURS["blue"], 2, size=(8, 8))
    table = _write(tmp_path / "t.csv", ["path", "label"], [["b0", "blue"], ["b0.png", "red"]])
    with pytest.raises(DataError, match="line 2 column 'path'") as info:
        table_dataset(table, images=tmp_path / "imgs")
    assert str(a) in str(info.value) and str(b) in str(info.value)


def test_rows_whose_image_is_missing_are_named_skipped_and_counted(images: Path, caplog) -> None:
    rows = [["a0.png", "blue"], ["gone.png", "red"], ["a1.png", "red"], ["a2.png", "blue"], ["a3.png", "red"]]
    with caplog.at_level(logging.WARNING, logger="imagefit"):
        ds = table_dataset(_write(images / "t.csv", ["path", "label"], rows), valid_pct=0.5)
    assert len(ds.train) + len(ds.valid) == 4
    assert "line 3 column 'path': no image 'gone.png'" in caplog.text
    assert "skipped 1 of 5 rows" in caplog.text


# --- bad input: one line naming the file, the row and the column -----------------------------

BAD = {
    "no path column": ("a,b\n1,x\n2,y\n", "no path column"),
    "path,labelduplicate": (
        "path,label\na0.png,blue\na1.png,red\na0.png,red\n",
        "listed twice with different labels, line 2 (blue) and line 4 (red)",
    ),
    "empty label": ("path,label\na0.png,blue\na1.png,\na2.png,red\n", "line 3 column 'label': no label"),
    "only in valid": (
        "path,label,is_valid\na0.png,blue,0\na1.png,red,0\na2.png,green,1\n",
        "line 4 column 'label': label 'green' appears only in validation",
    ),
    "not 0/1": ("image,blue,red\na0.png,1,0\na1.png,0,yes\n", "line 3 column 'red': 'yes' is not 0 or 1"),
    "one label": ("path,label\na0.png,blue\na1.png,blue\n", "needs at least two"),
    "bad is_valid": ("path,label,is_valid\na0.png,blue,maybe\n", "line 2 column 'is_valid': 'maybe' is not"),
    "bad split": ("path,label,split\na0.png,blue,holdout\n", "'holdout' is not train, valid or test"),
    "none exist": ("path,label\nx.png,blue\ny.png,red\n", "none of the 2 images named in column 'path'"),
    "cell count": ("path,label\na0.png,blue,extra\n", "line 2: 3 cells where the header has 2"),
    "header only": ("path,label\n", "no rows"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_tables_are_one_data_error_naming_file_row_and_column(images: Path, case: str) -> None:
    text, expected = BAD[case]
    table = images / "bad.csv"
    table.write_text(text)
    with pytest.raises(DataError) as info:
        table_dataset(table, valid_pct=0.5)
    message = str(info.value)
    assert expected in message and str(table) in message and "\n" not in message


def test_an_unknown_path_or_label_column_is_named(images: Path) -> None:
    table = _tags_table(images / "tags.csv", " ")
    with pytest.raises(DataError, match="no column 'file' \\(--path-col\\)"):
        table_dataset(table, path_col="file")
    with pytest.raises(DataError, match="no column 'labels' \\(--label-col\\)"):
        table_dataset(table, label_col="labels")


def test_table_options_on_a_folder_are_an_option_error(tmp_path: Path) -> None:
    make_folder(tmp_path / "data", n_train=1, n_valid=1)
    with pytest.raises(OptionError, match="--images, --label-col: option"):
        read_dataset(tmp_path / "data", images="x", label_col="y")


def test_the_cli_says_a_bad_table_in_one_line_and_exits_2(images: Path) -> None:
    (images / "bad.csv").write_text(BAD["not 0/1"][0])
    result = CliRunner().invoke(cli, ["train", str(images / "bad.csv"), "--model", TINY_MODEL])
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "line 3 column 'red'" in error[0]
