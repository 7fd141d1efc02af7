"""What `imagefit map` writes for many tiles: per-tile maps, a VRT mosaic, per-tile and pooled metrics,
GeoTIFFs with overviews and a colour table, polygons and area tables (on crops of the shared tiles)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image
from rasterio.transform import from_origin

from imagefit.cli import cli
from imagefit.maps.inputs.key import read_key
from imagefit.maps.outputs.legend import key_colours
from tests._tiles import write_labels
from tests.conftest import SHARED_DATA

AERIAL = SHARED_DATA / "aerial-tiles"
REFS = ("T1P01", "T2P02", "T3P03")  # the last one gets no truth
CROP = (200, 256)  # rows, cols: a 2x overview fits (longer side 128)
PIXEL = 0.5  # metres
ORIGIN = (300000.0, 2780000.0)  # EPSG:32640, near Dubai
TRAIN = ["--patch", "12", "--model", "conv8@3-pool2-dense16", "--epochs", "1", "--steps", "8"]

pytestmark = pytest.mark.skipif(not AERIAL.is_dir(), reason=f"{AERIAL} is absent")


def _crop(ref: str) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.asarray(Image.open(AERIAL / "3band" / f"{ref}.jpg").convert("RGB"))[: CROP[0], : CROP[1]]
    labels = np.asarray(Image.open(AERIAL / "theme" / f"{ref}-theme.png"))[: CROP[0], : CROP[1]]
    return rgb, labels


def _geotiff(path: Path, rgb: np.ndarray, transform) -> Path:
    profile = {"driver": "GTiff", "height": rgb.shape[0], "width": rgb.shape[1], "count": 3, "dtype": "uint8"}
    with rasterio.open(path, "w", crs="EPSG:32640", transform=transform, **profile) as ds:
        ds.write(rgb.transpose(2, 0, 1))
    return path


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """A small-CNN map run trained on crops, then `map` of three georeferenced crops side by side."""
    root = tmp_path_factory.mktemp("outputs")
    for sub in ("tiles/3band", "tiles/theme", "geo", "labels", "plain"):
        (root / sub).mkdir(parents=True)
    shutil.copy(AERIAL / "key-theme.txt", root / "tiles" / "key-theme.txt")
    for i, ref in enumerate(REFS):
        rgb, labels = _crop(ref)
        Image.fromarray(rgb).save(root / "tiles" / "3band" / f"{ref}.png")
        Image.fromarray(rgb).save(root / "plain" / f"{ref}.png")
        write_labels(root / "tiles" / "theme" / f"{ref}-theme.png", labels)
        transform = from_origin(ORIGIN[0] + i * CROP[1] * PIXEL, ORIGIN[1], PIXEL, PIXEL)
        _geotiff(root / "geo" / f"{ref}.tif", rgb, transform)
        if i < 2:
            write_labels(root / "labels" / f"{ref}-theme.png", labels)
    run = root / "run"
    args = ["map-train", str(root / "tiles"), "--train", *REFS[:2], "--valid", REFS[2], "--ignore", "0"]
    result = CliRunner().invoke(cli, ["-q", *args, *TRAIN, "--roi", "0,0,64,64", "--out", str(run)])
    assert result.exit_code == 0, result.output
    out = root / "out"
    args = ["map", str(run), str(root / "geo"), "--out-dir", str(out), "--truth", str(root / "labels")]
    result = CliRunner().invoke(cli, [*args, "--ignore", "0", "--polygons", str(out / "theme.gpkg")])
    assert result.exit_code == 0, result.output
    return root, run, out, result.output


def _key():
    return read_key(AERIAL / "key-theme.txt", ignore=0)


def _map(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _indices(values: np.ndarray) -> np.ndarray:
    key = _key()
    return np.select([values == v for v in key.values], list(range(len(key.values))), -1)


def test_every_tile_has_a_map_and_the_mosaic_reads_them_back_at_their_places(mapped):
    _, _, out, output = mapped
    assert sorted(p.name for p in out.glob("*-map.tif")) == [f"{ref}-map.tif" for ref in REFS]
    with rasterio.open(out / "mosaic.vrt") as mosaic:
        assert (mosaic.width, mosaic.height) == (3 * CROP[1], CROP[0])
        assert mosaic.crs.to_epsg() == 32640 and mosaic.res == (PIXEL, PIXEL)
        for ref in REFS:
            with rasterio.open(out / f"{ref}-map.tif") as tile:
                window = mosaic.window(*tile.bounds)
                part = mosaic.read(1, window=window.round_offsets().round_lengths())
                assert np.array_equal(part, tile.read(1)) and len(np.unique(part)) >= 2
    assert "wrote" in output and "mosaic.vrt" in output


def test_metrics_per_tile_and_pooled_from_the_summed_confusion_matrix(mapped):
    root, _, out, _ = mapped
    assert sorted(p.name for p in out.glob("*-metrics.json")) == [
        f"{ref}-map-metrics.json" for ref in REFS[:2]
    ]
    n = len(_key().names)
    total = np.zeros((n, n), np.int64)
    per_tile = []
    for ref in REFS[:2]:
        pred = _indices(_map(out / f"{ref}-map.tif"))
        truth = _indices(np.asarray(Image.open(root / "labels" / f"{ref}-theme.png")))
        both = (pred >= 0) & (truth >= 0)
        cm = np.zeros((n, n), np.int64)
        np.add.at(cm, (truth[both], pred[both]), 1)
        total += cm
        tile = json.loads((out / f"{ref}-map-metrics.json").read_text())
        assert tile["pixel_accuracy"] == pytest.approx(np.trace(cm) / cm.sum()) and tile["tile"].endswith(
            ref + ".tif"
        )
        per_tile.append(tile)
    pooled = json.loads((out / "metrics.json").read_text())
    hits, union = np.diag(total), total.sum(0) + total.sum(1) - np.diag(total)
    iou = [h / u for h, u in zip(hits, union, strict=True) if u]
    assert pooled["tiles"] == 2 and pooled["pixels"] == total.sum()
    assert pooled["pixel_accuracy"] == pytest.approx(hits.sum() / total.sum())
    assert pooled["miou"] == pytest.approx(np.mean(iou))
    assert pooled["confusion"] == total.tolist()
    rows = list(csv.DictReader((out / "tiles.csv").open()))
    assert [Path(r["tile"]).stem for r in rows] == list(REFS)
    assert float(rows[0]["miou"]) == pytest.approx(per_tile[0]["miou"]) and rows[2]["miou"] == ""


def test_the_geotiff_has_overviews_a_colour_table_and_the_sources_georeferencing(mapped):
    root, _, out, _ = mapped
    key = _key()
    colours = key_colours(key)
    for ref in REFS:
        with rasterio.open(root / "geo" / f"{ref}.tif") as src, rasterio.open(out / f"{ref}-map.tif") as ds:
            assert ds.crs == src.crs and ds.transform == src.transform and ds.dtypes[0] == "uint16"
            assert ds.overviews(1) == [2] and ds.block_shapes[0] == (256, 256)
            table = ds.colormap(1)
            assert table[1000] == (*colours[0], 255) and table[6000] == (*colours[5], 255)
            assert table[int(ds.nodata)][3] == 0  # no data: transparent
            overview = ds.read(1, out_shape=(CROP[0] // 2, CROP[1] // 2))
            assert set(np.unique(overview)) <= {0, *key.values}  # mode resampling: only classes
        style = (out / f"{ref}-map.qml").read_text()
        assert all(f'label="{name}"' in style for name in key.names)
        assert "<Name>Class</Name>" in (out / f"{ref}-map.tif.aux.xml").read_text()


def test_polygons_have_the_class_names_and_the_rasters_area_per_class(mapped):
    from pyogrio.raw import read

    _, _, out, _ = mapped
    meta, _, geometry, fields = read(out / "theme.gpkg", layer="theme")
    columns = dict(zip(meta["fields"], fields, strict=True))
    key = _key()
    maps = {ref: _map(out / f"{ref}-map.tif") for ref in REFS}
    for ref, values in maps.items():
        mine = columns["tile"] == ref
        for name, value in zip(key.names, key.values, strict=True):
            raster_area = (values == value).sum() * PIXEL * PIXEL
            chosen = mine & (columns["class"] == name)
            assert (columns["value"][chosen] == value).all()
            assert columns["area"][chosen].sum() == pytest.approx(raster_area, rel=0.01)
            assert columns["hectares"][chosen].sum() == pytest.approx(raster_area / 1e4, rel=0.01)
    present = {
        n for n, v in zip(key.names, key.values, strict=True) if any((m == v).any() for m in maps.values())
    }
    assert set(columns["class"]) == present and len(geometry) == len(columns["class"])


def test_the_area_tables_are_pixel_counts_times_the_pixel_area(mapped):
    _, _, out, output = mapped
    key = _key()
    pooled = {n: 0 for n in key.names}
    for ref in REFS:
        values = _map(out / f"{ref}-map.tif")
        rows = {r["class"]: r for r in csv.DictReader((out / f"{ref}-map-areas.csv").open())}
        for name, value in zip(key.names, key.values, strict=True):
            pixels = int((values == value).sum())
            assert int(rows[name]["pixels"]) == pixels and int(rows[name]["value"]) == value
            assert float(rows[name]["hectares"]) == pytest.approx(pixels * PIXEL * PIXEL / 1e4)
            pooled[name] += pixels
    total = {r["class"]: int(r["pixels"]) for r in csv.DictReader((out / "areas.csv").open())}
    assert total == pooled and "ha" in output


def test_simplified_polygons_still_tile_the_map_with_fewer_vertices(mapped, tmp_path):
    import shapely
    from pyogrio.raw import read

    root, run, _, _ = mapped
    tile = root / "geo" / f"{REFS[0]}.tif"
    counts = {}
    for tolerance in ("0", "1.0"):
        gpkg = tmp_path / f"p{tolerance}.gpkg"
        args = ["map", str(run), str(tile), "-o", str(tmp_path / "m.tif"), "--polygons", str(gpkg)]
        result = CliRunner().invoke(cli, [*args, "--simplify", tolerance])
        assert result.exit_code == 0, result.output
        meta, _, wkb, fields = read(gpkg)
        geometry = shapely.from_wkb(wkb)
        area = dict(zip(meta["fields"], fields, strict=True))["area"]
        mapped_area = (_map(tmp_path / "m.tif") > 0).sum() * PIXEL * PIXEL
        # unsimplified, the polygons are the map exactly; simplified, the outer edge may shift where a
        # class boundary meets it, but they stay a coverage: no overlaps (areas sum to their union)
        exact = 1e-6 if tolerance == "0" else 1e-4
        assert area.sum() == pytest.approx(mapped_area, rel=exact)
        assert shapely.is_valid(geometry).all() and shapely.area(geometry) == pytest.approx(area)
        assert shapely.area(shapely.union_all(geometry)) == pytest.approx(area.sum(), rel=1e-9)
        counts[tolerance] = shapely.get_num_coordinates(geometry).sum()
    assert counts["1.0"] < 0.8 * counts["0"]
    assert (tmp_path / "m-areas.csv").is_file() and "wrote " + str(gpkg) in result.output


def test_tiles_without_georeferencing_map_in_pixels_and_skip_the_mosaic(mapped, tmp_path):
    root, run, _, _ = mapped
    out, chips = tmp_path / "plain-out", tmp_path / "label-chips"
    chips.mkdir()
    for ref in REFS:  # labels with the tiles' own names, as drone datasets publish them
        shutil.copy(root / "tiles" / "theme" / f"{ref}-theme.png", chips / f"{ref}.png")
    pattern = str(root / "plain" / "*.png")  # a glob as a quoted argument: imagefit expands it
    args = ["-q", "map", str(run), pattern, "--out-dir", str(out), "--truth", str(chips), "--ignore", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "no mosaic.vrt" in result.output and "has no georeferencing" in result.output
    assert "areas in pixels" in result.output and not (out / "mosaic.vrt").exists()
    rows = list(csv.DictReader((out / f"{REFS[0]}-map-areas.csv").open()))
    assert "hectares" not in rows[0] and sum(int(r["pixels"]) for r in rows) > 0
    assert json.loads((out / "metrics.json").read_text())["tiles"] == 3
    assert len(list(out.glob("*-map.tif"))) == 3


def test_a_key_of_small_values_maps_to_bytes_with_a_256_entry_colour_table(tmp_path):
    from imagefit.maps.inputs.key import ThemeKey
    from imagefit.maps.inputs.rasters import RasterInfo
    from imagefit.maps.outputs.geotiff import write_geotiff
    from imagefit.maps.outputs.theme_map import Region, ThemeMap

    index = np.array([[0, 1, -1], [1, 1, 0]], np.int16)
    info = RasterInfo(tmp_path / "x.png", 2, 3, 3, "uint8", None, from_origin(0, 0, 1, 1))
    theme_map = ThemeMap(index, info, Region(0, 0, 2, 3))
    for values, nodata in (((40, 80), 0), ((0, 40), 255)):
        key = ThemeKey(("Tree", "Road"), values)
        with rasterio.open(write_geotiff(theme_map, key, tmp_path / "m.tif")) as ds:
            assert ds.dtypes[0] == "uint8" and ds.nodata == nodata and len(ds.colormap(1)) == 256
            expected = np.array([[values[0], values[1], nodata], [values[1], values[1], values[0]]])
            assert np.array_equal(ds.read(1), expected) and ds.colormap(1)[nodata][3] == 0


def test_bad_input_is_one_line_exit_2_and_nothing_written_is_lost(mapped, tmp_path):
    root, run, _, _ = mapped
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{REFS[0]}-map.tif").write_bytes(b"an earlier map")
    small = tmp_path / "small"
    small.mkdir()
    write_labels(small / f"{REFS[0]}-theme.png", np.full((10, 10), 2000))
    (tmp_path / "empty").mkdir()
    (tmp_path / "none.vrt").write_text('<VRTDataset rasterXSize="5" rasterYSize="5"></VRTDataset>')
    geo = str(root / "geo")
    cases = {
        f"labels {small / REFS[0]}-theme.png are 10x10 but tile": [geo, "--truth", str(small)],
        f"{tmp_path / 'empty'} holds no raster tiles": [str(tmp_path / "empty")],
        "holds no raster tiles": [str(tmp_path / "*.tif")],
        "is a VRT of zero tiles": [str(tmp_path / "none.vrt")],
        "is one label raster for 3 tiles": [geo, "--truth", str(small / f"{REFS[0]}-theme.png")],
    }
    for message, args in cases.items():
        result = CliRunner().invoke(cli, ["map", str(run), *args, "--out-dir", str(out)])
        assert result.exit_code == 2, (message, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert (out / f"{REFS[0]}-map.tif").read_bytes() == b"an earlier map"
    assert sorted(p.name for p in out.iterdir()) == [f"{REFS[0]}-map.tif"]
    result = CliRunner().invoke(cli, ["map", str(run), geo])
    assert result.exit_code == 2 and "need --out-dir" in result.output


@pytest.mark.parametrize("n", [3, 10, 11, 20, 23])
def test_default_class_colours_are_matplotlibs_tab10_or_tab20(n):
    import matplotlib

    from imagefit.maps.outputs.legend import class_colours

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    expected = (np.array([cmap(k % cmap.N)[:3] for k in range(n)]) * 255).round().astype(np.uint8)
    assert np.array_equal(class_colours(n), expected)
