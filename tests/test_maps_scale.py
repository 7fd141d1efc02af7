"""Maps at scale: streamed block by block into valid COGs, the same map, areas, metrics and polygons
as one block holds; progress; resume after a kill; tiles shared among torchrun ranks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from imagefit.cli import cli
from tests._tiles import label_raster, rgb_of, train_tiny_map_run, write_labels

ORIGIN = from_origin(440000.0, 110000.0, 0.25, 0.25)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    tiles, run, _ = train_tiny_map_run(root)
    return tiles, run


def georeferenced_tile(folder, name: str, height: int, width: int, seed: int, shift: int = 0):
    """A georeferenced RGB GeoTIFF (EPSG:27700) whose colours follow generated labels, and the labels
    as a 16-bit PNG beside it (TILE-theme.png): the tile's path."""
    labels = label_raster(height, width, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.tif"
    profile = {"driver": "GTiff", "height": height, "width": width, "count": 3, "dtype": "uint8"}
    profile.update(crs="EPSG:27700", transform=ORIGIN @ ORIGIN.translation(shift, 0))
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(rgb_of(labels, seed).transpose(2, 0, 1))
    (folder.parent / "truth").mkdir(exist_ok=True)
    write_labels(folder.parent / "truth" / f"{name}.png", labels)
    return path


def test_a_streamed_map_is_a_valid_cog_with_the_sources_grid_and_the_map_one_block_gives(trained, tmp_path):
    from imagefit.maps.mapping.region import map_region
    from imagefit.maps.mapping.tile import load_map_run
    from imagefit.maps.mapping.window_engines import make_engine
    from imagefit.maps.outputs.areas import class_areas
    from imagefit.maps.outputs.legend import colour_table
    from imagefit.maps.outputs.polygons import map_transform, polygonise

    _, run_dir = trained
    tile = georeferenced_tile(tmp_path / "in", "SU4012", 300, 420, seed=3)
    out = tmp_path / "out" / "SU4012-map.tif"
    args = ["map", str(run_dir), str(tile), "-o", str(out), "--window", "64", "--polygons"]
    args += [str(tmp_path / "out" / "p.gpkg"), "--truth", str(tmp_path / "truth" / "SU4012.png")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = load_map_run(run_dir)
    whole = map_region(
        make_engine(run.model, run.patch, temperature=run.temperature),
        tile,
        run.patch,
        run.mean,
        run.std,
        window=2048,
    )
    for path in (out, out.with_name("SU4012-confidence.tif")):
        valid, errors, warnings = cog_validate(str(path), quiet=True)
        assert valid and not errors and not warnings, (errors, warnings)
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 27700 and ds.transform == ORIGIN and ds.overviews(1) == [2]
            assert ds.block_shapes == [(256, 256)] and ds.profile["compress"] == "deflate"
            read = ds.read(1)
    with rasterio.open(out) as ds:
        values, nodata, colours = ds.read(1), ds.nodata, ds.colormap(1)
    assert all(colours[v] == tuple(c) for v, c in colour_table(run.key, int(nodata)).items())
    assert np.array_equal(values, run.key.decode(whole.index, int(nodata)))  # 7 x 5 blocks = 1 block
    assert np.array_equal(read, whole.confidence)
    areas = class_areas(whole.index, run.key, map_transform(whole), whole.source.crs)
    rows = (out.parent / "SU4012-map-areas.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[2]) for r in rows] == areas.pixels.tolist()
    one_block = polygonise(whole)
    import pyogrio.raw
    import shapely

    meta, _, wkb, fields = pyogrio.raw.read(tmp_path / "out" / "p.gpkg")
    geometry, names = shapely.from_wkb(wkb), fields[list(meta["fields"]).index("class")]
    assert len(geometry) == len(one_block.geometry) >= 3  # the river crossing 6 rows of blocks is one
    for k, name in enumerate(run.key.names):
        ours = shapely.union_all(geometry[names == name])
        theirs = shapely.union_all(one_block.geometry[one_block.index == k])
        assert ours.symmetric_difference(theirs).area < 1e-9
    metrics = json.loads((out.parent / "metrics.json").read_text())
    assert metrics["pixels"] == 300 * 420 and metrics["pixel_accuracy"] > 0.8


def test_seam_polygons_merge_a_field_split_by_block_edges():
    from imagefit.maps.outputs.polygons import SeamPolygons
    from imagefit.maps.outputs.theme_map import Region

    index = np.zeros((40, 50), np.int16)
    index[5:35, 8:45] = 1  # one field across four blocks
    index[20, 2] = 1  # a lone pixel
    index[:3, 47:] = -1  # no data
    seams = SeamPolygons(Region(0, 0, 40, 50), from_origin(0, 40, 1, 1), None)
    for r0 in (0, 16, 32):
        for c0 in (0, 25):
            seams.add(index[r0 : r0 + 16, c0 : c0 + 25], r0, c0)
    polygons = seams.polygons()
    assert sorted(polygons.index.tolist()) == [0, 1, 1]
    assert sorted(polygons.area.tolist()) == sorted([1.0, 30 * 37, 40 * 50 - 30 * 37 - 1 - 9])
