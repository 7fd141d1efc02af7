"""Tiles datasets: the key, patches labelled by their centre pixel, scan order, ROI, sampling, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagefit.errors import DataError
from imagefit.maps.inputs.key import IGNORED, read_key
from imagefit.maps.inputs.tileset import TileSet
from imagefit.maps.training.patches import (
    PatchSource,
    generate_labelled_patches,
    load_class_names,
    load_labelled_patches,
)
from tests._tiles import KEY, make_tiles, write_labels


@pytest.fixture
def tiles(tmp_path):
    return make_tiles(tmp_path / "tiles")


def _truth(root, ref):
    image = np.asarray(Image.open(root / "3band" / f"{ref}.png"))
    labels = np.asarray(Image.open(root / "theme" / f"{ref}-theme.png")).astype(np.int64)
    return image, labels


def test_the_key_names_the_classes_in_file_order_and_maps_values_to_indices(tiles):
    assert load_class_names(tiles) == ["Building", "Land", "Water"]
    key = read_key(tiles / "key-theme.txt", ignore=0)
    index = key.encode(np.array([[5000, 0], [1000, 2000]], np.uint16), "x.png")
    assert index.tolist() == [[2, IGNORED], [0, 1]]
    assert key.decode(np.array([2, -1, 0]), nodata=0).tolist() == [5000, 0, 1000]


def test_scan_order_patches_are_the_image_windows_labelled_by_their_centre_pixel(tiles):
    patches, labels = load_labelled_patches(["A1"], 7, step=3, tiles=tiles)
    image, raw = _truth(tiles, "A1")
    rows, cols = range(0, 60 - 7 + 1, 3), range(0, 80 - 7 + 1, 3)
    assert len(patches) == len(rows) * len(cols) and patches.shape[1:] == (7, 7, 3)
    values = [1000, 2000, 5000]
    for n in (0, 1, len(cols), 137, len(patches) - 1):
        y, x = rows[n // len(cols)], cols[n % len(cols)]
        assert np.array_equal(patches[n], image[y : y + 7, x : x + 7])
        assert values[labels[n]] == raw[y + 3, x + 3]


def test_roi_limit_shuffle_and_one_hot(tiles):
    roi = ((10, 5), (40, 25))
    patches, _ = load_labelled_patches(["A2"], 8, roi=roi, tiles=tiles)
    assert len(patches) == (30 - 7) * (20 - 7)
    image, _ = _truth(tiles, "A2")
    assert np.array_equal(patches[0], image[5:13, 10:18])
    options = {"limit": 50, "shuffle": True, "tiles": tiles, "labels": "onehot", "seed": 3}
    a, ya = load_labelled_patches(["A1", "A2"], 8, **options)
    b, _ = load_labelled_patches(["A1", "A2"], 8, **options)
    assert len(a) == 50 and np.array_equal(a, b) and ya.shape == (50, 3) and np.all(ya.sum(1) == 1)
    first, _ = load_labelled_patches(["A1", "A2"], 8, limit=50, tiles=tiles)
    assert not np.array_equal(a, first)  # shuffled is not the scan order


def test_balanced_sampling_draws_rare_classes_as_often_as_common_ones(tiles):
    source = PatchSource(TileSet(tiles), ["A1", "B1"], 5)
    share = np.bincount(source.labels, minlength=3) / len(source)
    assert share[1] > 0.6  # land dominates the tiles
    drawn = source.labels[source.sample(6000, np.random.default_rng(0), balance=True)]
    assert np.allclose(np.bincount(drawn, minlength=3) / 6000, 1 / 3, atol=0.03)
    batch, y = next(generate_labelled_patches(["A1"], 9, batch_size=16, tiles=tiles, balance=True))
    assert batch.shape == (16, 9, 9, 3) and batch.dtype == np.uint8 and y.shape == (16,)


def test_an_unknown_label_value_names_the_file_and_value_unless_ignored(tiles):
    labels = np.asarray(Image.open(tiles / "theme" / "A1-theme.png")).copy()
    labels[20:30, 20:30] = 0
    write_labels(tiles / "theme" / "A1-theme.png", labels)
    with pytest.raises(DataError, match=r"A1-theme.png: label value 0 is not in the key.*--ignore 0"):
        load_labelled_patches(["A1"], 5, tiles=tiles)
    patches, _ = load_labelled_patches(["A1"], 5, tiles=tiles, ignore=0)
    assert len(patches) == 56 * 76 - 10 * 10  # the centres that fell on ignored pixels are left out
    with pytest.raises(DataError, match="--ignore 1000 is the value of class 'Building'"):
        TileSet(tiles, ignore=1000)


def test_bad_tiles_folders_are_clear_errors(tiles, tmp_path):
    with pytest.raises(DataError, match="ref 'Z9' has no image"):
        load_labelled_patches(["Z9"], 5, tiles=tiles)
    with pytest.raises(DataError, match="patch size 70 is larger than tile A1"):
        load_labelled_patches(["A1"], 70, tiles=tiles)
    with pytest.raises(DataError, match=r"ROI \(0,0\)-\(90,10\) is not inside tile A1 \(80x60"):
        load_labelled_patches(["A1"], 5, roi=((0, 0), (90, 10)), tiles=tiles)
    write_labels(tiles / "theme" / "A2-theme.png", np.full((50, 80), 2000))
    with pytest.raises(DataError, match=r"A2.*is 80x60 but labels .*A2-theme.png are 80x50"):
        load_labelled_patches(["A2"], 5, tiles=tiles)
    (tiles / "key-theme.txt").unlink()
    with pytest.raises(DataError, match=r"missing key file .*key-theme\.txt"):
        TileSet(tiles)
    bad = make_tiles(tmp_path / "bad", refs=("A1",))
    (bad / "key-theme.txt").write_text("Building\tlots\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: expected `name<TAB>value`"):
        TileSet(bad)
    assert sorted(KEY) == ["Building", "Land", "Water"]


def test_tiles_read_by_window_from_tif_and_jpg(tmp_path):
    root = make_tiles(tmp_path / "tif", refs=("T1",), ext=".tif")
    image, index = TileSet(root).read("T1", ((5, 10), (25, 40)))
    full = np.asarray(Image.open(root / "3band" / "T1.tif"))
    assert np.array_equal(image, full[10:40, 5:25]) and index.shape == (30, 20)
