"""discover_dataset: every supported folder layout, the validation split, and the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagefit.data.folders import discover_dataset
from imagefit.errors import DataError, OptionError


def _image(path: Path, value: int = 0) -> Path:
    """A tiny real image file (layout discovery only looks at names, but keep the files honest)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value % 256, np.uint8)).save(path)
    return path


def _class_folders(root: Path, counts: dict[str, int], ext: str = ".png") -> dict[str, set[Path]]:
    """root/<class>/<class>_<i><ext> for each class; returns the files written per class."""
    written = {}
    for name, n in counts.items():
        written[name] = {_image(root / name / f"{name}_{i:03d}{ext}", i) for i in range(n)}
    return written


def _by_class(ds, split: str) -> dict[str, set[Path]]:
    out: dict[str, set[Path]] = {name: set() for name in ds.classes}
    for s in getattr(ds, split):
        out[ds.classes[s.label]].add(s.path)
    return out


# --- train/valid layouts ---------------------------------------------------------------------


@pytest.mark.parametrize("valid_name", ["valid", "val", "validation"])
def test_train_and_valid_folders(tmp_path: Path, valid_name: str) -> None:
    train = _class_folders(tmp_path / "train", {"cat": 3, "dog": 2})
    valid = _class_folders(tmp_path / valid_name, {"cat": 1, "dog": 2})
    ds = discover_dataset(tmp_path)
    assert ds.classes == ["cat", "dog"]
    assert _by_class(ds, "train") == train
    assert _by_class(ds, "valid") == valid
    assert ds.test == []
    assert ds.counts("train") == {"cat": 3, "dog": 2}
    assert ds.counts("valid") == {"cat": 1, "dog": 2}
    assert valid_name in ds.layout


def test_labels_index_sorted_class_names(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train", {"zebra": 1, "ant": 1, "moose": 1})
    _class_folders(tmp_path / "valid", {"moose": 1})
    ds = discover_dataset(tmp_path)
    assert ds.classes == ["ant", "moose", "zebra"]
    for s in ds.train + ds.valid:
        assert s.path.parent.name == ds.classes[s.label]
    assert [s.label for s in ds.valid] == [1]


def test_valid_may_hold_a_subset_of_classes(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train", {"cat": 2, "dog": 2})
    _class_folders(tmp_path / "valid", {"dog": 1})
    ds = discover_dataset(tmp_path)
    assert ds.counts("valid") == {"cat": 0, "dog": 1}


def test_optional_test_folder_is_unlabelled_and_recursive(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train", {"cat": 2, "dog": 2})
    _class_folders(tmp_path / "valid", {"cat": 1, "dog": 1})
    flat = [_image(tmp_path / "test" / f"{i}.jpg") for i in range(3)]
    nested = _image(tmp_path / "test" / "unknown" / "x.png")
    (tmp_path / "test" / "notes.txt").write_text("not an image")
    ds = discover_dataset(tmp_path)
    assert sorted(s.path for s in ds.test) == sorted([*flat, nested])
    assert all(s.label == -1 for s in ds.test)
    assert len(ds.train) == 4 and len(ds.valid) == 2


def test_train_without_valid_is_split(tmp_path: Path) -> None:
    train = _class_folders(tmp_path / "train", {"cat": 10, "dog": 10})
    ds = discover_dataset(tmp_path, valid_pct=0.3, seed=1)
    assert ds.counts("valid") == {"cat": 3, "dog": 3}
    assert ds.counts("train") == {"cat": 7, "dog": 7}
    tr, va = _by_class(ds, "train"), _by_class(ds, "valid")
    for name in ("cat", "dog"):
        assert tr[name] | va[name] == train[name]
        assert not tr[name] & va[name]


def test_hidden_folders_and_non_images_are_ignored(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train", {"cat": 2, "dog": 2})
    _class_folders(tmp_path / "valid", {"cat": 1, "dog": 1})
    _image(tmp_path / "train" / ".ipynb_checkpoints" / "a.png")
    (tmp_path / "train" / "cat" / "readme.txt").write_text("x")
    _image(tmp_path / "train" / "cat" / ".hidden.png")
    ds = discover_dataset(tmp_path)
    assert ds.classes == ["cat", "dog"]
    assert ds.counts("train") == {"cat": 2, "dog": 2}


# --- one folder of class folders, split by valid_pct ------------------------------------------


def test_single_folder_split_is_stratified_and_complete(tmp_path: Path) -> None:
    files = _class_folders(tmp_path, {"a": 20, "b": 10, "c": 5})
    ds = discover_dataset(tmp_path, valid_pct=0.2, seed=0)
    assert ds.classes == ["a", "b", "c"]
    assert ds.counts("valid") == {"a": 4, "b": 2, "c": 1}
    assert ds.counts("train") == {"a": 16, "b": 8, "c": 4}
    tr, va = _by_class(ds, "train"), _by_class(ds, "valid")
    for name, paths in files.items():
        assert not tr[name] & va[name]
        assert tr[name] | va[name] == paths
    assert "seed 0" in ds.layout


def test_single_folder_split_same_seed_same_split(tmp_path: Path) -> None:
    _class_folders(tmp_path, {"a": 30, "b": 30})
    first = discover_dataset(tmp_path, valid_pct=0.25, seed=7)
    second = discover_dataset(tmp_path, valid_pct=0.25, seed=7)
    assert [s.path for s in first.valid] == [s.path for s in second.valid]
    assert [s.path for s in first.train] == [s.path for s in second.train]


def test_single_folder_split_other_seed_other_split(tmp_path: Path) -> None:
    _class_folders(tmp_path, {"a": 30, "b": 30})
    first = discover_dataset(tmp_path, valid_pct=0.25, seed=7)
    other = discover_dataset(tmp_path, valid_pct=0.25, seed=8)
    assert {s.path for s in first.valid} != {s.path for s in other.valid}
    assert other.counts("valid") == first.counts("valid")


def test_split_keeps_one_image_per_class_on_each_side(tmp_path: Path) -> None:
    _class_folders(tmp_path, {"a": 2, "b": 1, "c": 50})
    ds = discover_dataset(tmp_path, valid_pct=0.01)
    # a tiny pct still validates on one image per class, but never takes a class's last image
    assert ds.counts("valid") == {"a": 1, "b": 0, "c": 1}
    assert ds.counts("train") == {"a": 1, "b": 1, "c": 49}


# --- Kaggle-style names -----------------------------------------------------------------------


def _kaggle(folder: Path, counts: dict[str, int]) -> dict[str, set[Path]]:
    return {name: {_image(folder / f"{name}.{i}.jpg", i) for i in range(n)} for name, n in counts.items()}


def test_kaggle_names_at_top_level(tmp_path: Path) -> None:
    files = _kaggle(tmp_path, {"cat": 5, "dog": 5})
    ds = discover_dataset(tmp_path, valid_pct=0.2, seed=3)
    assert ds.classes == ["cat", "dog"]
    assert ds.counts("valid") == {"cat": 1, "dog": 1}
    tr, va = _by_class(ds, "train"), _by_class(ds, "valid")
    for name in ("cat", "dog"):
        assert tr[name] | va[name] == files[name]
        assert not tr[name] & va[name]


def test_kaggle_names_inside_train_with_test(tmp_path: Path) -> None:
    files = _kaggle(tmp_path / "train", {"cat": 4, "dog": 6})
    test = {_image(tmp_path / "test" / f"{i}.jpg") for i in range(1, 4)}
    ds = discover_dataset(tmp_path, valid_pct=0.5, seed=0)
    assert ds.classes == ["cat", "dog"]
    assert ds.counts("valid") == {"cat": 2, "dog": 3}
    assert {s.path for s in ds.train} | {s.path for s in ds.valid} == files["cat"] | files["dog"]
    assert {s.path for s in ds.test} == test
    assert all(s.path.name.startswith(ds.classes[s.label] + ".") for s in ds.train + ds.valid)


def test_kaggle_names_in_train_and_valid(tmp_path: Path) -> None:
    _kaggle(tmp_path / "train", {"cat": 3, "dog": 3})
    valid = _kaggle(tmp_path / "valid", {"cat": 2, "dog": 1})
    ds = discover_dataset(tmp_path)
    assert _by_class(ds, "valid") == valid


# --- errors -----------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="does not exist") as err:
        discover_dataset(missing)
    assert str(missing) in str(err.value)


def test_file_instead_of_folder(tmp_path: Path) -> None:
    file = _image(tmp_path / "one.png")
    with pytest.raises(DataError, match="is a file") as err:
        discover_dataset(file)
    assert str(file) in str(err.value)


def test_no_class_folders_and_plain_names(tmp_path: Path) -> None:
    for name in ("IMG_001.jpg", "IMG_002.jpg"):
        _image(tmp_path / name)
    with pytest.raises(DataError, match="no class subfolders") as err:
        discover_dataset(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_some_names_not_kaggle_style(tmp_path: Path) -> None:
    _kaggle(tmp_path, {"cat": 2, "dog": 2})
    _image(tmp_path / "holiday.jpg")
    with pytest.raises(DataError) as err:
        discover_dataset(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        discover_dataset(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_only_one_class(tmp_path: Path) -> None:
    _class_folders(tmp_path, {"cat": 5})
    with pytest.raises(DataError, match="only one class") as err:
        discover_dataset(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert "cat" in str(err.value)


def test_only_one_class_in_train(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train", {"cat": 5})
    _class_folders(tmp_path / "valid", {"cat": 1})
    with pytest.raises(DataError, match="only one class") as err:
        discover_dataset(tmp_path)
    assert str(tmp_path / "train") in str(err.value)


def test_only_one_kaggle_class(tmp_path: Path) -> None:
    _kaggle(tmp_path, {"cat": 3})
    with pytest.raises(DataError, match="only one class"):
        discover_dataset(tmp_path)


def test_empty_class_folder(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train", {"cat": 2, "dog": 2})
    empty = tmp_path / "train" / "bird"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="has no images") as err:
        discover_dataset(tmp_path)
    assert str(empty) in str(err.value)


def test_valid_class_missing_from_train(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train", {"cat": 2, "dog": 2})
    _class_folders(tmp_path / "valid", {"cat": 1, "fox": 1})
    with pytest.raises(DataError, match="fox") as err:
        discover_dataset(tmp_path)
    assert str(tmp_path / "valid") in str(err.value)


@pytest.mark.parametrize("pct", [0.0, 1.0, -0.1, 1.5])
def test_valid_pct_out_of_range(tmp_path: Path, pct: float) -> None:
    _class_folders(tmp_path, {"cat": 4, "dog": 4})
    with pytest.raises(OptionError, match="valid-pct") as err:
        discover_dataset(tmp_path, valid_pct=pct)
    assert str(pct) in str(err.value)
