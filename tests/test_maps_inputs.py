"""Theme-map inputs as they come, on crops of the shared aerial tiles: folders paired by name, colour
masks, vector layers, drone-style chips, 4-band GeoTIFFs with nodata, and the errors of bad input."""

from __future__ import annotations

import csv
import json
import logging
import re

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.errors import DataError
from imagefit.maps.inputs.key import IGNORED
from imagefit.maps.inputs.tileset import TileSet
from tests._aerial import (
    AERIAL,
    COLOURS,
    ORIGIN,
    UTM,
    VALUES,
    needs_aerial,
    polygonise,
    read_tile,
    write_geotiff,
    write_key,
    write_png,
)

pytestmark = needs_aerial
SPEC = "conv8@3-pool2-dense16"
TINY = ["--model", SPEC, "--patch", "12", "--epochs", "1", "--steps", "2", "--batch-size", "16"]
WINDOW = (100, 120, 160, 180)  # row, col, height, width of the crops


def test_colour_masks_give_the_theme_rasters_classes(tmp_path):
    """RGB masks (tiles 1, 8) and palette masks (tiles 2, 4) with a colour key: the same class of
    every pixel as the 16-bit theme rasters, black #000000 where those hold the unlabelled 0."""
    refs = ["T1P01", "T2P03", "T4P05", "T8P03"]
    with rasterio.open(AERIAL / "masks" / "T2P03.png") as ds:
        assert ds.count == 1 and ds.colorinterp[0].name == "palette"  # the premise
    key = write_key(tmp_path / "colours.txt", COLOURS)
    masks = TileSet(images=AERIAL / "3band", labels=AERIAL / "masks", key=key, ignore="#000000")
    themes = TileSet(AERIAL, ignore=0)
    assert masks.pairing.pattern == "*=*" and masks.classes == themes.classes
    for ref in refs:
        _, by_colour = masks.read(ref)
        _, by_value = themes.read(ref)
        assert np.array_equal(by_colour, by_value), ref
    assert (by_value == IGNORED).mean() > 0.1  # T8P03: 17 % unlabelled
    unignored = TileSet(images=AERIAL / "3band", labels=AERIAL / "masks", key=key)
    with pytest.raises(
        DataError, match=r"T8P03.png: colours not in the key: #000000 \(\d+ pixels\).*'#000000'"
    ):
        unignored.read("T8P03")


def _chips(folder, names, refs, labels_of=None):
    """Crops of shared tiles as PNGs `folder/<name>`: the image, or `labels_of(values)` when given."""
    for name, ref in zip(names, refs, strict=True):
        rgb, values = read_tile(ref, WINDOW)
        write_png(folder / name, rgb if labels_of is None else labels_of(values))


def _colour_mask(values):
    rgb = np.zeros((*values.shape, 3), np.uint8)
    for name, value in VALUES.items():
        code = int(COLOURS[name][1:], 16)
        rgb[values == value] = (code >> 16, (code >> 8) & 255, code & 255)
    return rgb


def test_names_pair_by_a_guessed_pattern_and_images_without_labels_are_listed(tmp_path, caplog):
    refs = ["T1P01", "T2P02", "T3P03"]
    _chips(tmp_path / "sat", [f"{r}_sat.png" for r in [*refs, "T5P01"]], [*refs, "T5P01"])
    _chips(tmp_path / "mask", [f"{r}_mask.png" for r in refs], refs, _colour_mask)
    key = write_key(tmp_path / "colours.txt", COLOURS)
    with caplog.at_level(logging.WARNING):
        tiles = TileSet(images=tmp_path / "sat", labels=tmp_path / "mask", key=key)
    assert tiles.refs() == [f"{r}_sat" for r in refs] and tiles.pairing.pattern == "*_sat=*_mask"
    assert "1 image(s) have no label file" in caplog.text and "T5P01_sat.png" in caplog.text
    _, index = tiles.read("T2P02_sat")
    assert np.array_equal(index, TileSet(AERIAL).read("T2P02", _roi(WINDOW))[1])
    given = TileSet(images=tmp_path / "sat", labels=tmp_path / "mask", key=key, label_pattern="*_sat=*_mask")
    assert given.refs() == tiles.refs()
    with pytest.raises(DataError, match=r"ref T5P01_sat: no labels for image .*T5P01_sat.png"):
        tiles.read("T5P01_sat")
    with pytest.raises(
        DataError, match=r"no label file in .*mask pairs with an image .* by the names \*=\*-x"
    ):
        TileSet(images=tmp_path / "sat", labels=tmp_path / "mask", key=key, label_pattern="*-x")


def test_colour_masks_train_and_score_a_map(tmp_path):
    refs = ["T1P01", "T2P02", "T6P01"]
    _chips(tmp_path / "sat", [f"{r}_sat.png" for r in refs], refs)
    _chips(tmp_path / "mask", [f"{r}_mask.png" for r in refs], refs, _colour_mask)
    key = write_key(tmp_path / "colours.txt", COLOURS)
    inputs = ["--images", str(tmp_path / "sat"), "--labels", str(tmp_path / "mask"), "--key", str(key)]
    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["-q", "map-train", *inputs, "--ignore", "#000000", "-o", str(run), *TINY]
    )
    assert result.exit_code == 0, result.output
    key_json = json.loads((run / "config.json").read_text())["options"]["map"]["key"]
    assert key_json["colours"] == list(COLOURS.values()) and key_json["ignore"] == "#000000"
    out, truth = tmp_path / "T6P01-map.tif", tmp_path / "mask" / "T6P01_mask.png"
    args = ["map", str(run), str(tmp_path / "sat" / "T6P01_sat.png"), "--truth", str(truth), "-o", str(out)]
    args += ["--ignore", "#000000"]  # a colour, as map-train takes it
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as ds:
        values = ds.read(1)
    assert set(np.unique(values)) <= set(range(7)) and (values > 0).mean() > 0.8  # classes 1..6, 0 no data
    assert json.loads((tmp_path / "metrics.json").read_text())["pixels"] == (values > 0).sum()


def test_a_pairs_csv_names_images_and_labels(tmp_path):
    _chips(tmp_path / "a", ["one.png", "two.png"], ["T1P01", "T3P01"])
    _chips(tmp_path / "b", ["first.png", "second.png"], ["T1P01", "T3P01"], _colour_mask)
    with (tmp_path / "pairs.csv").open("w", newline="") as f:
        csv.writer(f).writerows(
            [["image", "label"], ["a/one.png", "b/first.png"], ["a/two.png", "b/second.png"]]
        )
    key = write_key(tmp_path / "colours.txt", COLOURS)
    tiles = TileSet(pairs=tmp_path / "pairs.csv", key=key)
    assert tiles.refs() == ["one", "two"] and tiles.tile("two").labels.name == "second.png"
    assert np.array_equal(tiles.read("two")[1], TileSet(AERIAL).read("T3P01", _roi(WINDOW))[1])


def _roi(window):
    row, col, height, width = window
    return ((col, row), (col + width, row + height))


def _georeferenced_tiles(folder, refs, transform=ORIGIN):
    """Georeferenced GeoTIFF crops `folder/<ref>.tif` (UTM 40N), and their label values by ref."""
    labels = {}
    for i, ref in enumerate(refs):
        rgb, labels[ref] = read_tile(ref, WINDOW)
        shifted = transform * transform.translation(0, 400 * i)  # each crop its own place
        write_geotiff(folder / f"{ref}.tif", rgb, transform=shifted)
    return labels


def _vector_of(labels: dict, folder, path, to_crs=None):
    """One layer of every crop's polygonised labels (each at its crop's place)."""
    import pyogrio.raw

    parts = []
    for ref, values in labels.items():
        with rasterio.open(folder / f"{ref}.tif") as ds:
            transform = ds.transform
        parts.append(
            pyogrio.raw.read(polygonise(values, transform, path.with_name(f"{ref}.gpkg"), UTM, to_crs))
        )
    wkb = np.concatenate([p[2] for p in parts])
    themes = np.concatenate([p[3][0] for p in parts])
    pyogrio.raw.write(
        path, wkb, [themes], ["theme"], geometry_type="Polygon", crs=to_crs or UTM, driver="GPKG"
    )
    return path


def test_a_vector_layer_rasterises_back_to_the_labels_it_was_made_from(tmp_path):
    refs = ["T1P01", "T6P02"]
    labels = _georeferenced_tiles(tmp_path / "images", refs)
    gpkg = _vector_of(labels, tmp_path / "images", tmp_path / "landcover.gpkg")
    key = write_key(tmp_path / "key.txt", VALUES)
    tiles = TileSet(images=tmp_path / "images", vector=gpkg, attribute="theme", key=key, ignore=0)
    themes = TileSet(AERIAL, ignore=0)
    for ref in refs:
        _, index = tiles.read(ref)
        assert np.array_equal(index, themes.read(ref, _roi(WINDOW))[1]), ref
    _, part = tiles.read("T6P02", ((10, 20), (70, 50)))  # a window burns the same pixels
    assert np.array_equal(part, themes.read("T6P02", ((130, 120), (190, 150)))[1])


def test_a_vector_layer_in_another_crs_is_reprojected_onto_each_image(tmp_path):
    """The layer in WGS 84 degrees, the images in UTM metres: polygons reprojected to each image's CRS.
    Vertices go there and back exactly enough that no pixel centre changes side (allowed: 0.1 %)."""
    refs = ["T1P01", "T6P02"]
    labels = _georeferenced_tiles(tmp_path / "images", refs)
    gpkg = _vector_of(labels, tmp_path / "images", tmp_path / "landcover.gpkg", to_crs="EPSG:4326")
    key = write_key(tmp_path / "key.txt", VALUES)
    tiles = TileSet(images=tmp_path / "images", vector=gpkg, attribute="theme", key=key, ignore=0)
    for ref in refs:
        _, index = tiles.read(ref)
        expected = TileSet(AERIAL, ignore=0).read(ref, _roi(WINDOW))[1]
        assert (index != expected).mean() <= 0.001, ref


def _drone_layout(root):
    """image-chips/X.png and label-chips/X.png (values 0, 40, 80... in three equal bands) as a
    public drone dataset publishes them, with its key."""
    refs = ["T1P01", "T2P02", "T3P03", "T6P01"]
    drone = {name: 40 * (i + 1) for i, name in enumerate(VALUES)}
    for n, ref in enumerate(refs):
        rgb, values = read_tile(ref, WINDOW)
        chip = np.zeros(values.shape, np.uint8)
        for name, value in VALUES.items():
            chip[values == value] = drone[name]
        write_png(root / "image-chips" / f"chip{n}.png", rgb)
        write_png(root / "label-chips" / f"chip{n}.png", np.repeat(chip[..., None], 3, axis=2))
    return write_key(root / "drone-key.txt", drone), drone


def test_a_drone_layout_trains_and_maps_as_it_comes(tmp_path):
    key, drone = _drone_layout(tmp_path)
    run = tmp_path / "run"
    args = ["map-train", "--images", str(tmp_path / "image-chips"), "--labels", str(tmp_path / "label-chips")]
    result = CliRunner().invoke(
        cli, ["-q", *args, "--key", str(key), "--ignore", "0", "--out", str(run), *TINY]
    )
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    maps = config["options"]["map"]
    assert maps["valid"] == "chip3" and maps["train"] == ["chip0", "chip1", "chip2"] and maps["bands"] is None
    assert config["classes"] == list(VALUES) and maps["key"]["values"] == list(drone.values())
    chip, truth = tmp_path / "image-chips" / "chip3.png", tmp_path / "label-chips" / "chip3.png"
    out = tmp_path / "maps" / "chip3-map.tif"
    result = CliRunner().invoke(cli, ["map", str(run), str(chip), "--truth", str(truth), "-o", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out.parent / "metrics.json").read_text())
    with rasterio.open(out) as ds:
        values = ds.read(1)
    labelled = (values > 0) & (np.asarray(rasterio.open(truth).read(1)) > 0)
    assert metrics["pixels"] == labelled.sum() > 0.5 * values.size
    assert set(np.unique(values)) <= {0, *drone.values()}


def _four_band_tiles(folder, refs):
    """4-band GeoTIFF crops (RGB + a synthetic band) with nodata 0 in a corner, and their labels."""
    labels = {}
    for i, ref in enumerate(refs):
        rgb, values = read_tile(ref, WINDOW)
        fourth = (rgb.astype(np.int32).sum(2) // 3).astype(np.uint8)[..., None]  # a grey band
        bands = np.concatenate([rgb, fourth], axis=2).clip(1, 255)
        bands[:30, :40] = 0  # no data
        write_geotiff(
            folder / f"{ref}.tif", bands, transform=ORIGIN @ ORIGIN.translation(0, 400 * i), nodata=0
        )
        labels[ref] = values
    return labels


def test_a_four_band_geotiff_with_nodata_trains_and_maps(tmp_path):
    refs = ["T1P01", "T3P02", "T6P03"]
    _four_band_tiles(tmp_path / "images", refs)
    for ref in refs:
        _, values = read_tile(ref, WINDOW)
        write_png(tmp_path / "labels" / f"{ref}-theme.png", values)
    key = write_key(tmp_path / "key.txt", VALUES)
    tiles = TileSet(images=tmp_path / "images", labels=tmp_path / "labels", key=key, ignore=0)
    pixels, index = tiles.read("T1P01")
    assert tiles.bands == 4 and pixels.shape == (160, 180, 4)
    assert (index[:30, :40] == IGNORED).all() and (index[30:, 40:] >= 0).mean() > 0.95  # nodata: no target
    run = tmp_path / "run"
    inputs = ["--images", str(tmp_path / "images"), "--labels", str(tmp_path / "labels"), "--key", str(key)]
    result = CliRunner().invoke(cli, ["-q", "map-train", *inputs, "--ignore", "0", "--out", str(run), *TINY])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["description"]["in_chans"] == 4 and len(config["data_config"]["mean"]) == 4
    out = tmp_path / "T6P03-map.tif"
    result = CliRunner().invoke(
        cli, ["map", str(run), str(tmp_path / "images" / "T6P03.tif"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as ds, rasterio.open(tmp_path / "images" / "T6P03.tif") as src:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.nodata == 0
        values = ds.read(1)
    assert (values[:30, :40] == 0).all() and set(np.unique(values[40:-10, 50:-10])) <= set(VALUES.values())


def test_bands_are_chosen_and_a_pretrained_first_convolution_takes_them(tmp_path):
    from timm.models import adapt_input_conv

    from imagefit.models.registry import create_backbone

    _four_band_tiles(tmp_path / "images", ["T1P01"])
    write_png(tmp_path / "labels" / "T1P01.png", read_tile("T1P01", WINDOW)[1])
    key = write_key(tmp_path / "key.txt", VALUES)
    inputs = {"images": tmp_path / "images", "labels": tmp_path / "labels", "key": key, "ignore": 0}
    all_bands, _ = TileSet(**inputs).read("T1P01")
    chosen, _ = TileSet(**inputs, bands=(4, 1)).read("T1P01")
    assert np.array_equal(chosen, all_bands[..., [3, 0]])
    with pytest.raises(DataError, match=r"T1P01.tif: band 5 is out of range: it has bands 1 to 4"):
        TileSet(**inputs, bands=(1, 5)).read("T1P01")
    rgb = create_backbone("efficientnet_lite0", num_classes=6, image_size=32).model.conv_stem.weight
    four = create_backbone("efficientnet_lite0", num_classes=6, image_size=32, in_chans=4)
    assert torch.equal(four.model.conv_stem.weight, adapt_input_conv(4, rgb))
    assert four.data_config["mean"] == (0.5,) * 4 and four.data_config["input_size"][0] == 4


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """A place holding the bad inputs below."""
    root = tmp_path_factory.mktemp("bad")
    _four_band_tiles(root / "images", ["T1P01", "T2P01"])
    write_key(root / "key.txt", VALUES)
    write_key(root / "colours.txt", COLOURS)
    _, values = read_tile("T1P01", WINDOW)
    _, second = read_tile("T2P01", WINDOW)
    for folder in ("small", "odd", "good", "crs"):
        write_png(root / folder / "T2P01.png", second)
    write_png(root / "colour" / "T2P01.png", _colour_mask(second))
    write_png(root / "small" / "T1P01.png", values[:100])
    write_geotiff(root / "crs" / "T1P01.tif", values, crs="EPSG:32639")
    odd = values.copy()
    odd[:7, :3] = 7
    write_png(root / "odd" / "T1P01.png", odd)
    mask = _colour_mask(values)
    mask[:2, :4] = (0x12, 0x34, 0x56)
    write_png(root / "colour" / "T1P01.png", mask)
    write_png(root / "one" / "T2P01.png", second)
    write_png(root / "good" / "T1P01.png", values)
    polygonise(values, ORIGIN, root / "layer.gpkg")
    far = ORIGIN @ ORIGIN.translation(10**6, 0)
    polygonise(values, far, root / "far.gpkg")
    return root


IGNORE = ["--ignore", "0"]
CASES = {  # extra arguments, the error line expected, whether it is found before a run folder is made
    "sizes": (["--labels", "{d}/small", *IGNORE], r"T1P01.tif is 180x160 but labels .*T1P01.png are 180x100"),
    "crs": (
        ["--labels", "{d}/crs", *IGNORE],
        r"T1P01.tif is in EPSG:32640 but labels .*T1P01.tif are in EPSG:32639",
    ),
    "value": (
        ["--labels", "{d}/odd", *IGNORE],
        r"odd/T1P01.png: label value 7 is not in the key \(21 pixels\)",
    ),
    "colour": (
        ["--labels", "{d}/colour", "--key", "{d}/colours.txt", "--ignore", "#000000"],
        r"colour/T1P01.png: colours not in the key: #123456 \(8 pixels\)",
    ),
    "attribute": (
        ["--vector", "{d}/layer.gpkg", "--attribute", "class"],
        r"layer.gpkg has no attribute 'class'",
    ),
    "outside": (
        ["--vector", "{d}/far.gpkg", "--attribute", "theme"],
        r"far.gpkg: its geometries .* outside every",
    ),
    "band": (
        ["--labels", "{d}/good", "--bands", "1,2,9"],
        r"T1P01.tif: band 9 is out of range: it has bands 1 to 4",
    ),
    "unpaired": (["--labels", "{d}/one", "--train", "T1P01"], r"ref T1P01: no labels for image .*T1P01.tif"),
    "none": (
        ["--labels", "{d}/crs", "--label-pattern", "*=*_x"],
        r"no label file in .*crs pairs with an image",
    ),
}
READ_LATE = {"value", "colour"}  # found when the pixels are read, in training


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_naming_the_file_and_value(bad, case):
    extra, expected = CASES[case]
    args = ["map-train", "--images", str(bad / "images"), "--key", str(bad / "key.txt")]
    args += [a.format(d=bad) for a in extra]
    result = CliRunner().invoke(cli, [*args, "--out", str(bad / f"run-{case}"), *TINY])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and re.search(expected, lines[0]), result.output
    assert case in READ_LATE or not (bad / f"run-{case}").exists()


def test_a_decoder_takes_four_bands_trains_and_maps_them(tmp_path):
    """A U-Net's encoder first convolution adapted to 4 bands as timm adapts a backbone's; it trains
    on 4-band GeoTIFFs with nodata and maps one, nodata kept."""
    from timm.models import adapt_input_conv

    from imagefit.models.build import build_model
    from imagefit.models.registry import create_backbone
    from imagefit.models.segmentation import create_decoder

    rgb = create_backbone("efficientnet_lite0", num_classes=6).model.conv_stem.weight
    model, _, data_config = create_decoder("unet", 6, in_chans=4)
    assert torch.equal(model.encoder.model.conv_stem.weight, adapt_input_conv(4, rgb))
    assert len(data_config["mean"]) == 4 and model.segmentation_record["in_chans"] == 4
    assert build_model(model.segmentation_record, 6).encoder.model.conv_stem.weight.shape[1] == 4
    refs = ["T1P01", "T6P03"]
    _four_band_tiles(tmp_path / "images", refs)
    for ref in refs:
        write_png(tmp_path / "labels" / f"{ref}-theme.png", read_tile(ref, WINDOW)[1])
    key = write_key(tmp_path / "key.txt", VALUES)
    inputs = ["--images", str(tmp_path / "images"), "--labels", str(tmp_path / "labels"), "--key", str(key)]
    tiny = ["--model", "unet", "--epochs", "1", "--steps", "2", "--batch-size", "2", "--crop", "64"]
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["-q", "map-train", *inputs, "--ignore", "0", "--out", str(run), *tiny])
    assert result.exit_code == 0, result.output
    out = tmp_path / "map.tif"
    tile = str(tmp_path / "images" / "T6P03.tif")
    result = CliRunner().invoke(cli, ["map", str(run), tile, "-o", str(out)])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as ds:
        values = ds.read(1)
    assert (values[:30, :40] == 0).all() and (values[30:, 40:] != 0).all()  # nodata only where the source's
