"""Calibrated map runs end to end: map-train's temperature, the confidence GeoTIFF, --min-confidence."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin

from imagefit.cli import cli
from tests._tiles import label_raster, rgb_of, train_tiny_map_run, write_labels

TRANSFORM = from_origin(440000.0, 110000.0, 0.25, 0.25)  # 0.25 m pixels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("confidence")
    _, run, output = train_tiny_map_run(root)
    labels = label_raster(80, 100, seed=7)
    rgb = np.maximum(rgb_of(labels, 7), 1)  # 0 is the tile's no-data value...
    rgb[:6, :10] = 0  # ...of this corner only
    tile = root / "SU4012.tif"
    profile = {"driver": "GTiff", "height": 80, "width": 100, "count": 3, "dtype": "uint8", "nodata": 0}
    with rasterio.open(tile, "w", crs="EPSG:27700", transform=TRANSFORM, **profile) as ds:
        ds.write(rgb.transpose(2, 0, 1))
    write_labels(root / "SU4012-theme.png", labels)
    return root, run, tile, labels, output


def _map(run, tile, out, *extra):
    result = CliRunner().invoke(cli, ["map", str(run), str(tile), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1), ds.profile


def test_map_train_fits_a_temperature_on_the_validation_pixels(trained):
    _, run, _, _, output = trained
    config = json.loads((run / "config.json").read_text())
    t = config["calibration"]["temperature"]
    assert 0.25 <= t <= 20 and t != 1.0
    trust = json.loads((run / "metrics.json").read_text())["trust"]
    assert trust["temperature"] == pytest.approx(t)
    assert trust["pixels"] == 70 * 90  # every pixel of B1 is labelled, and its 90x70 ROI is the tile
    assert trust["ece"] <= trust["ece_uncalibrated"] + 0.01 and 0 <= trust["ece"] < 0.2
    assert f"calibration: temperature {t:.3f}" in output


def test_the_confidence_geotiff_is_the_calibrated_top_probability_on_the_maps_grid(trained, tmp_path):
    from imagefit.maps.mapping.blend import softmax
    from imagefit.maps.mapping.region import region_logits
    from imagefit.maps.mapping.tile import load_map_run
    from imagefit.maps.mapping.window_engines import make_engine

    root, run, tile, labels, _ = trained
    _map(run, tile, tmp_path / "SU4012-map.tif", "--truth", str(root / "SU4012-theme.png"))
    values, map_profile = _read(tmp_path / "SU4012-map.tif")
    confidence, profile = _read(tmp_path / "SU4012-confidence.tif")
    assert confidence.shape == values.shape == (80, 100) and profile["dtype"] == "uint8"
    assert (
        profile["crs"] == map_profile["crs"] and profile["transform"] == map_profile["transform"] == TRANSFORM
    )
    assert profile["tiled"] and profile["compress"] == "deflate" and profile["nodata"] == 0
    nodata = values == map_profile["nodata"]
    assert nodata[:6, :10].all() and nodata.sum() == 60  # the tile's no-data corner, nothing else
    assert (confidence[nodata] == 0).all() and confidence[~nodata].min() >= 255 // 3  # at least 1/classes
    right = (values == labels) & ~nodata
    assert right.mean() > 0.8
    assert (
        confidence[right].mean() > 0.8 * 255
        and confidence[right].mean() > confidence[~right & ~nodata].mean()
    )
    m = load_map_run(run)  # by hand: the logits over T, softmax, top class
    logits = region_logits(make_engine(m.model, m.patch, engine="torch"), tile, m.patch, m.mean, m.std)
    expected = np.rint(255 * softmax(logits / m.temperature).max(0))
    assert np.abs(expected[~nodata] - confidence[~nodata]).max() <= 1


def test_min_confidence_leaves_unsure_pixels_out_of_the_map_areas_and_metrics(trained, tmp_path):
    root, run, tile, _, _ = trained
    truth = ["--truth", str(root / "SU4012-theme.png")]
    _map(run, tile, tmp_path / "all" / "SU4012-map.tif", *truth)
    output = _map(run, tile, tmp_path / "sure" / "SU4012-map.tif", *truth, "--min-confidence", "0.95")
    every, profile = _read(tmp_path / "all" / "SU4012-map.tif")
    sure, _ = _read(tmp_path / "sure" / "SU4012-map.tif")
    confidence, _ = _read(tmp_path / "sure" / "SU4012-confidence.tif")
    nodata = profile["nodata"]
    unsure = (sure == nodata) & (every != nodata)
    assert 0.05 < unsure.mean() < 0.95 and (sure[~unsure] == every[~unsure]).all()
    assert (confidence[unsure] < 255).all() and (confidence[unsure] > 0).all()  # they keep their confidence
    rows = {r["class"]: r for r in csv.DictReader((tmp_path / "sure" / "SU4012-map-areas.csv").open())}
    before = {r["class"]: r for r in csv.DictReader((tmp_path / "all" / "SU4012-map-areas.csv").open())}
    assert "unsure" not in before and int(rows["unsure"]["pixels"]) == unsure.sum()
    for name, value in (("Building", 1000), ("Land", 2000), ("Water", 5000)):
        assert int(rows[name]["pixels"]) == (sure == value).sum() <= int(before[name]["pixels"])
    assert float(rows["unsure"]["hectares"]) == pytest.approx(unsure.sum() * 0.25 * 0.25 / 1e4, abs=1e-6)
    assert sum(float(r["share"]) for r in rows.values()) == pytest.approx(1, abs=1e-5)
    metrics = json.loads((tmp_path / "sure" / "metrics.json").read_text())
    assert metrics["unsure"]["pixels"] == unsure.sum() and metrics["unsure"]["min_confidence"] == 0.95
    assert metrics["pixels"] == (sure != nodata).sum()  # scored: the sure pixels only
    assert f"unsure (below --min-confidence): {unsure.sum()} pixels" in output


def test_min_confidence_outside_zero_to_one_is_exit_code_2(trained, tmp_path):
    _, run, tile, _, _ = trained
    for value in ("0", "1.5", "1"):
        result = CliRunner().invoke(
            cli, ["map", str(run), str(tile), "-o", str(tmp_path / "m.tif"), "--min-confidence", value]
        )
        assert result.exit_code == 2, result.output
        assert "--min-confidence must be a probability between 0 and 1" in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "m.tif").exists()


def test_a_run_without_calibration_maps_as_before(trained, tmp_path):
    from imagefit.maps.mapping.blend import softmax
    from imagefit.maps.mapping.region import region_logits
    from imagefit.maps.mapping.tile import load_map_run
    from imagefit.maps.mapping.view_engines import TemperatureEngine
    from imagefit.maps.mapping.window_engines import make_engine

    _, run, tile, _, _ = trained
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    config = json.loads((old / "config.json").read_text())
    del config["calibration"]  # as runs were saved before calibration
    (old / "config.json").write_text(json.dumps(config))
    m = load_map_run(old)
    assert m.temperature is None and not isinstance(
        make_engine(m.model, m.patch, temperature=None), TemperatureEngine
    )
    _map(old, tile, tmp_path / "old" / "SU4012-map.tif", "--engine", "onnx")  # fp32 in both: the runs differ
    _map(run, tile, tmp_path / "new" / "SU4012-map.tif", "--engine", "onnx")
    old_map, new_map = (tmp_path / d / "SU4012-map.tif" for d in ("old", "new"))
    assert old_map.read_bytes() == new_map.read_bytes()  # a temperature keeps every pixel's class
    logits = region_logits(make_engine(m.model, m.patch, engine="torch"), tile, m.patch, m.mean, m.std)
    confidence, _ = _read(tmp_path / "old" / "SU4012-confidence.tif")
    plain = np.rint(255 * softmax(logits).max(0))
    valid = confidence > 0
    assert np.abs(plain[valid] - confidence[valid]).max() <= 1  # no temperature applied
    calibrated, _ = _read(tmp_path / "new" / "SU4012-confidence.tif")
    assert not np.array_equal(calibrated, confidence)


def test_no_calibrate_is_a_map_train_option():
    from imagefit.cli.maps import given_map_options, map_train
    from imagefit.maps.training.options import MapTrainOptions

    ctx = map_train.make_context("map-train", ["TILES", "--no-calibrate"])
    assert given_map_options(ctx) == {"calibrate": False} and MapTrainOptions().calibrate is True


def test_each_tta_view_is_calibrated_before_its_softmax():
    import torch

    from imagefit.maps.mapping.blend import softmax
    from imagefit.maps.mapping.symmetries import dihedral, undo_dihedral
    from imagefit.maps.mapping.window_engines import make_engine

    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 3, 5, padding=2).eval()
    model.segmentation_record = {"arch": "test"}  # mapped as a decoder: a class for every pixel
    plain, tta = make_engine(model, 1, engine="torch"), make_engine(model, 1, tta=True, temperature=2.0)
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 48)).astype(np.float32)
    views = [undo_dihedral(softmax(plain(np.ascontiguousarray(dihedral(x, k, (2, 3)))) / 2), k, (1, 2))
             for k in range(8)]  # fmt: skip
    assert np.allclose(np.exp(tta(x)), np.mean(views, axis=0), atol=1e-5)
    assert not np.allclose(np.exp(tta(x)), np.exp(make_engine(model, 1, tta=True)(x)), atol=1e-3)
