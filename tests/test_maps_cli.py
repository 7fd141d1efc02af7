"""map-train and map end to end on generated tiles: run folder, GeoTIFF, PNG, metrics, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image
from rasterio.transform import from_origin

from imagefit.cli import cli
from imagefit.maps.outputs.metrics import map_metrics
from tests._tiles import TINY_MAP_TRAIN, label_raster, rgb_of, train_tiny_map_run, write_labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("maps")
    tiles, run, output = train_tiny_map_run(root)
    return root, tiles, run, output


def test_map_train_writes_a_run_folder_with_history_and_a_map_per_epoch(trained):
    _, _, run, output = trained
    assert "valid map B1: pixel accuracy" in output
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "history.csv", "checkpoints", "maps"} <= names
    assert sorted(p.name for p in (run / "maps").iterdir()) == ["epoch_01.png", "epoch_02.png", "truth.png"]
    config = json.loads((run / "config.json").read_text())
    assert config["strategy"] == "map" and config["classes"] == ["Building", "Land", "Water"]
    assert config["options"]["map"]["patch"] == 12 and config["options"]["map"]["train"] == ["A1", "A2"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["valid_map"]["pixel_accuracy"] > 0.8  # colours say the class: easy to learn
    assert len((run / "history.csv").read_text().splitlines()) == 3


def _given(*args: str) -> dict:
    from imagefit.cli.maps import given_map_options, map_train

    return given_map_options(map_train.make_context("map-train", ["TILES", *args]))


def test_map_train_passes_on_only_the_options_given():
    assert _given() == {}
    assert _given("--train", "A", "B", "--valid", "C", "--seed", "3", "-o", "run") == {}  # run arguments
    typed = ["--no-augment", "--bands", "3,2,1", "--ignore", "#00ff00", "--roi", "0,0,5,6", "--key", "k.txt"]
    assert _given(*typed, "--epochs", "5") == {
        "augment": False,
        "bands": (3, 2, 1),
        "ignore": "#00FF00",
        "roi": ((0, 0), (5, 6)),
        "key": "k.txt",
        "epochs": 5,  # given, though it equals the default
    }


def test_map_train_help_shows_the_dataclass_defaults():
    from imagefit.maps.training.options import KIND_DEFAULTS, MapTrainOptions

    text = " ".join(CliRunner().invoke(cli, ["map-train", "--help"]).output.split())
    patch = {kind: defaults["patch"] for kind, defaults in KIND_DEFAULTS.items()}
    assert f"(default: small CNNs {patch['small CNNs']}, backbones {patch['backbones']}, decoders 1)" in text
    assert f"(default: {MapTrainOptions.model})" in text


def test_the_validation_map_is_drawn_before_the_progress_bar_closes_the_epoch():
    from imagefit.maps.training.display_map import DisplayMap
    from imagefit.train.callbacks.progress import ProgressBar

    assert DisplayMap.order < ProgressBar.order  # the Trainer runs callbacks in ascending order


def _georeferenced(path, labels, seed):
    rgb = rgb_of(labels, seed).transpose(2, 0, 1)
    profile = {"driver": "GTiff", "height": labels.shape[0], "width": labels.shape[1], "count": 3}
    profile.update(dtype="uint8", crs="EPSG:27700", transform=from_origin(440000.0, 110000.0, 0.25, 0.25))
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(rgb)
    return path


def test_map_writes_a_geotiff_with_the_sources_georeferencing_a_png_and_metrics(trained, tmp_path):
    _, _, run, _ = trained
    labels = label_raster(80, 100, seed=7)
    labels[:5, :5] = 0  # unlabelled pixels, ignored with --ignore 0
    tile = _georeferenced(tmp_path / "SU4012.tif", labels, 7)
    write_labels(tmp_path / "SU4012-theme.png", labels)
    out = tmp_path / "out" / "SU4012-map.tif"
    args = [
        "map",
        str(run),
        str(tile),
        "-o",
        str(out),
        "--png",
        "--truth",
        str(tmp_path / "SU4012-theme.png"),
    ]
    result = CliRunner().invoke(cli, [*args, "--ignore", "0", "--window", "40"])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 27700 and ds.transform == from_origin(440000.0, 110000.0, 0.25, 0.25)
        values = ds.read(1)
        assert ds.nodata == 0 and ds.dtypes[0] == "uint16"
    assert set(np.unique(values)) <= {1000, 2000, 5000}  # every pixel mapped, the border too
    assert (values == labels).mean() > 0.8
    metrics = json.loads((out.parent / "metrics.json").read_text())
    assert set(metrics) >= {"pixel_accuracy", "miou", "iou"}
    assert set(metrics["iou"]) == {"Building", "Land", "Water"}
    index = np.select([values == 1000, values == 2000, values == 5000], [0, 1, 2], -1)
    truth = np.select([labels == 1000, labels == 2000, labels == 5000], [0, 1, 2], -1)
    assert metrics["pixel_accuracy"] == pytest.approx(
        map_metrics(index, truth, ["B", "L", "W"])["pixel_accuracy"]
    )
    assert Image.open(out.with_suffix(".png")).size[0] > 300


def test_naive_and_dense_maps_are_the_same(trained, tmp_path):
    _, tiles, run, _ = trained
    maps = []
    for extra in ([], ["--naive"]):
        out = tmp_path / f"map{len(extra)}.tif"
        result = CliRunner().invoke(
            cli, ["map", str(run), str(tiles / "3band" / "A1.png"), "-o", str(out), *extra]
        )
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as ds:
            maps.append(ds.read(1))
    assert np.array_equal(maps[0], maps[1]) and len(np.unique(maps[0])) >= 2  # classes vary (no border now)


def test_bad_input_is_one_line_and_exit_code_2(trained, tmp_path):
    _, tiles, run, _ = trained
    tile = str(tiles / "3band" / "A1.png")
    write_labels(tmp_path / "small-theme.png", np.full((10, 10), 2000))
    (tmp_path / "nokey").mkdir()
    cases = {
        "are 10x10 but tile": ["map", str(run), tile, "--truth", str(tmp_path / "small-theme.png")],
        "missing key file": ["map-train", str(tmp_path / "nokey"), "--train", "A1", "--valid", "A2"],
        "ref 'Z1' has no image": ["map-train", str(tiles), "--train", "Z1", "--valid", "A2", *TINY_MAP_TRAIN],
        "patch size 200 is larger than tile A1": [
            "map-train", str(tiles), "--train", "A1", "--valid", "A2", *TINY_MAP_TRAIN, "--patch", "200",
        ],
        "ROI (0,0)-(400,20) is not inside": ["map", str(run), tile, "--roi", "0,0,400,20"],
        "is not a run folder": ["map", str(tmp_path), tile],
        "gives each class a value: ignore a value such as 0": ["map", str(run), tile, "--ignore", "#000000"],
    }  # fmt: skip
    for message, args in cases.items():
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (message, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_label_value_not_in_the_key_is_named(trained, tmp_path):
    _, tiles, run, _ = trained
    labels = np.asarray(Image.open(tiles / "theme" / "A1-theme.png")).copy()
    labels[0, 0] = 7
    write_labels(tmp_path / "A1-theme.png", labels)
    result = CliRunner().invoke(
        cli, ["map", str(run), str(tiles / "3band" / "A1.png"), "--truth", str(tmp_path / "A1-theme.png")]
    )
    assert (
        result.exit_code == 2
        and "label value 7 is not in the key" in result.output
        and "--ignore 7" in result.output
    )


def test_a_backbone_trains_on_its_later_blocks_and_maps_a_tile(trained, tmp_path):
    _, tiles, _, _ = trained
    run = tmp_path / "bb"
    args = ["map-train", str(tiles), "--train", "A1", "--valid", "B1", "--model", "test_efficientnet"]
    args += ["--weights", "none", "--patch", "32", "--epochs", "1", "--steps", "3", "--batch-size", "8"]
    result = CliRunner().invoke(cli, ["-q", *args, "--stages", "top2:1:1e-3", "--out", str(run)])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["map"]["patch"] == 32 and config["arch"] == "test_efficientnet"
    out = tmp_path / "bb.tif"
    result = CliRunner().invoke(cli, ["map", str(run), str(tiles / "3band" / "A1.png"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as ds:
        values = ds.read(1)
    assert set(np.unique(values)) <= {1000, 2000, 5000}  # every pixel gets a class, the border too
