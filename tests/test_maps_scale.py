"""Maps at scale: streamed block by block into valid COGs, the same map, areas, metrics and polygons
as one block holds; progress; resume after a kill; tiles shared among torchrun ranks."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from imagefit.cli import cli
from tests._tiles import label_raster, rgb_of, train_tiny_map_run, write_labels

ORIGIN = from_origin(440000.0, 110000.0, 0.25, 0.25)
SEED = int(os.environ.get("IMAGEFIT_KILL_SEED", time.time_ns() % 10_000))


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
    args += ["--engine", "onnx"]  # fp32 on every window shape (bf16's rounding follows the shape)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = load_map_run(run_dir)
    whole = map_region(
        make_engine(run.model, run.patch, engine="onnx", temperature=run.temperature),
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


def many_tiles(root, n: int = 4, size=(70, 90)):
    """`n` georeferenced tiles side by side (one mosaic) in ROOT/in, their labels in ROOT/truth."""
    return [georeferenced_tile(root / "in", f"T{k}", *size, seed=k, shift=k * size[1]) for k in range(n)]


def test_progress_is_one_line_per_tile_off_a_terminal_and_nothing_when_quiet(trained, tmp_path):
    _, run = trained
    many_tiles(tmp_path, 3)
    args = ["map", str(run), str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"), "--window", "48"]
    shown = CliRunner().invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.stderr.splitlines() if line.startswith("map ")]
    assert [line.split(":")[0] for line in lines] == ["map 1/3 T0.tif", "map 2/3 T1.tif", "map 3/3 T2.tif"]
    assert "0.0 Mpx in" in lines[0] and "Mpx/s, ETA" in lines[0] and lines[2].endswith("ETA 0:00:00")
    quiet = CliRunner().invoke(cli, ["-q", *args[:4], str(tmp_path / "out2"), *args[5:]])
    assert quiet.exit_code == 0 and "Mpx" not in quiet.stderr


def test_progress_on_a_terminal_is_a_bar_in_pixels_with_rate_and_eta(capsys):
    from imagefit.maps.mapping.progress import MapProgress

    with MapProgress([(Path("a.tif"), 3_000_000), (Path("b.tif"), 1_000_000)], terminal=True) as bar:
        bar.skip(Path("b.tif"))
        bar.advance(1_500_000)
    shown = capsys.readouterr().err
    assert "map:" in shown and "2.50M/4.00M" in shown
    assert "px/s" in shown


def test_tiles_are_shared_among_ranks_by_size_each_once():
    from imagefit.maps.mapping.many_tiles import share

    tiles = [Path(f"t{k}.tif") for k in range(7)]
    sizes = dict(zip(tiles, [100, 40, 60, 30, 70, 10, 90], strict=True))
    shares = share(tiles, sizes, 2)
    assert sorted(t for s in shares for t in s) == sorted(tiles)  # every tile once
    loads = [sum(sizes[t] for t in s) for s in shares]
    assert sorted(loads) == [200, 200] and shares[0] == sorted(shares[0])
    assert share(tiles, sizes, 1) == [tiles]


ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "IMAGEFIT_CACHE": str(tmp_path / "cache"), "IMAGEFIT_DIST_TIMEOUT": "60"}  # fmt: skip


def _map_args(run, root, out) -> list[str]:
    args = ["map", str(run), str(root / "in"), "--out-dir", str(out), "--window", "48"]
    return [*args, "--truth", str(root / "truth"), "--polygons", str(out / "polygons.gpkg")]


def _assert_valid_outputs(out) -> None:
    """Every map and confidence GeoTIFF in `out` a valid COG; no temporary file left."""
    for path in [*out.glob("*-map.tif"), *out.glob("*-confidence.tif")]:
        valid, errors, _ = cog_validate(str(path), quiet=True)
        assert valid, (path, errors)


def _same_outputs(a, b) -> None:
    """Every file of folder `a` equal in `b`: byte for byte, but for the seconds a map took (metrics,
    records, tiles.csv) and a GeoPackage's timestamps (its features compared instead)."""
    import pyogrio.raw

    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        x, y = a / name, b / name
        if name.endswith(".json"):
            assert _timeless(json.loads(x.read_text())) == _timeless(json.loads(y.read_text())), name
        elif name == "tiles.csv":
            rows = [[r.split(",")[:7] + r.split(",")[8:] for r in p.read_text().splitlines()] for p in (x, y)]
            assert rows[0] == rows[1]
        elif name.endswith(".gpkg"):
            (_, _, ga, fa), (_, _, gb, fb) = pyogrio.raw.read(x), pyogrio.raw.read(y)
            assert ga.tolist() == gb.tolist() and all((u == v).all() for u, v in zip(fa, fb, strict=True))
        else:
            assert x.read_bytes() == y.read_bytes(), name


def _timeless(data):
    """JSON data without its "seconds" (at any depth)."""
    if isinstance(data, dict):
        return {k: _timeless(v) for k, v in data.items() if k != "seconds"}
    return [_timeless(v) for v in data] if isinstance(data, list) else data


@pytest.fixture(autouse=True)
def _default_sigchld():
    """Earlier DataLoaders leave torch's SIGCHLD handler; the children killed here are not its workers."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGCHLD, previous)


def test_a_many_tile_map_killed_then_run_again_maps_every_tile_once(trained, tmp_path, monkeypatch):
    _, run = trained
    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "cache"))  # the children's: one engine choice for all
    many_tiles(tmp_path, 6)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagefit", "-q", *_map_args(run, tmp_path, out)],
        env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    seen: dict[int, float] = {}  # tiles done -> when first seen
    while (done := len(list(out.glob("*-done.json")))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        seen.setdefault(done, time.monotonic())
        time.sleep(0.01)
    tile = time.monotonic() - seen.get(
        1, seen.get(0, time.monotonic())
    )  # about one tile's time on this machine, now
    time.sleep(random.Random(SEED).uniform(0.0, tile))  # killed before the last tiles are done
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("*-done.json")}
    assert 2 <= len(kept) < 6, f"seed {SEED}"
    _assert_valid_outputs(out)  # no partial map ever takes a final name
    again = CliRunner().invoke(cli, _map_args(run, tmp_path, out))
    assert again.exit_code == 0, again.output
    assert f"kept {len(kept)} tiles an earlier run had mapped" in again.stdout
    mapped = [line.split(":")[0].split()[-1] for line in again.stderr.splitlines() if line.startswith("map ")]
    assert len(mapped) == 6 - len(kept) and not {f"{t[:-4]}-map-done.json" for t in mapped} & set(kept)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*-done.json") if p.name in kept} == kept
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    _assert_valid_outputs(out)
    fresh = CliRunner().invoke(cli, ["-q", *_map_args(run, tmp_path, tmp_path / "fresh")])
    assert fresh.exit_code == 0, fresh.output
    _same_outputs(out, tmp_path / "fresh")


def test_two_torchrun_ranks_share_the_tiles_and_write_what_one_process_writes(trained, tmp_path, monkeypatch):
    _, run = trained
    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "cache"))  # the children's: one engine choice for all
    many_tiles(tmp_path, 4)
    one = CliRunner().invoke(cli, _map_args(run, tmp_path, tmp_path / "one"))
    assert one.exit_code == 0, one.output
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    cmd += ["-m", "imagefit", *_map_args(run, tmp_path, tmp_path / "two")]
    two = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    mapped = sorted(
        line.split(":")[0].split()[-1]
        for line in two.stderr.splitlines()
        if "map 1/2" in line or "map 2/2" in line
    )
    assert mapped == ["T0.tif", "T1.tif", "T2.tif", "T3.tif"], two.stderr  # two tiles a rank, each tile once
    assert two.stdout.count("pooled over 4 tiles") == 1  # rank 0 reports
    _same_outputs(tmp_path / "one", tmp_path / "two")


def test_decoder_graph_engines_give_pytorchs_logits_and_auto_remembers_its_choice(monkeypatch, tmp_path):
    import torch

    from imagefit.maps.mapping import decoder_engines
    from imagefit.maps.mapping.window_engines import TorchDenseEngine, make_engine
    from imagefit.models.segmentation import build_decoder, decoder_record

    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = build_decoder(decoder_record("unet"), 4).eval()
    x = np.random.default_rng(0).normal(size=(1, 3, 70, 100)).astype(np.float32)  # padded to 96 x 128
    reference = TorchDenseEngine(model, 1)(x)
    for kind in ("onnx", "openvino"):
        out = make_engine(model, 1, engine=kind)(x)
        assert out.shape == reference.shape == (4, 70, 100)
        assert np.abs(out - reference).max() < 1e-3 * max(1.0, np.abs(reference).max()), kind
    chosen = make_engine(model, 1)
    assert np.array_equal(chosen(x).argmax(0), reference.argmax(0))  # the first window: measured
    record = json.loads(next((tmp_path / "cache" / "engines").glob("decoder-*.json")).read_text())
    assert record["engine"] == chosen.name and {"torch", "onnx", "openvino"} <= set(record["mpx_per_s"])
    assert all(record["agreement"][k] >= 0.995 for k in ("onnx", "openvino"))
    measured = []
    monkeypatch.setattr(decoder_engines.ChosenDecoderEngine, "_choose", lambda self, x: measured.append(x))
    again = make_engine(model, 1)
    again(x)
    assert again.name == record["engine"] and not measured  # remembered, not measured again


def test_a_small_cnn_maps_alike_on_every_engine_and_auto_measures_them(trained, tmp_path, monkeypatch):
    tiles, run = trained
    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "cache"))
    maps = {}
    for engine in ("torch", "onnx", "openvino", "auto"):
        out = tmp_path / f"{engine}.tif"
        args = ["-q", "map", str(run), str(tiles / "3band" / "B1.png"), "-o", str(out), "--engine", engine]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as ds:
            maps[engine] = ds.read(1)
    for engine in ("onnx", "openvino", "auto"):  # exact networks: the same classes, up to float ties
        assert (maps[engine] == maps["torch"]).mean() > 0.999, engine
    record = json.loads(next((tmp_path / "cache" / "engines").glob("decoder-*.json")).read_text())
    assert {"torch", "onnx", "openvino"} <= set(record["mpx_per_s"]) and record["engine"] in record[
        "mpx_per_s"
    ]


def test_on_a_gpu_auto_maps_with_pytorch_under_amp_only_where_its_classes_agree(monkeypatch):
    """The GPU path's logic, run on the CPU (CPU autocast computes bf16 too): no GPU is lent to CI."""
    import torch

    from imagefit.maps.mapping import window_engines
    from imagefit.maps.mapping.window_engines import GpuEngine, TorchDenseEngine, make_engine
    from imagefit.models.segmentation import build_decoder, decoder_record
    from imagefit.train.engine import distributed

    torch.manual_seed(0)
    model = build_decoder(decoder_record("unet"), 4).eval()
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 96)).astype(np.float32)
    fp32 = TorchDenseEngine(model, 1)(x)
    bf16 = TorchDenseEngine(model, 1, amp=torch.bfloat16)(x)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (4, 64, 96)
    assert 0 < np.abs(bf16 - fp32).max() < 0.1 * np.abs(fp32).max()  # computed in bf16, close to fp32

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU, played by the CPU
    monkeypatch.setattr(distributed, "device", lambda: torch.device("cpu"))
    auto = make_engine(model, 1)
    assert isinstance(auto, GpuEngine)
    agreement = (auto.torch.__class__(model, 1, amp=torch.bfloat16)(x).argmax(0) == fp32.argmax(0)).mean()
    expected = "torch-bf16" if agreement >= window_engines.AGREEMENT else "torch"
    assert np.allclose(auto(x), bf16 if expected == "torch-bf16" else fp32) and auto.name == expected
    monkeypatch.setattr(window_engines, "AGREEMENT", 1.01)  # no AMP agrees that well: fp32 it is
    strict = make_engine(model, 1)
    assert np.array_equal(strict(x), fp32) and strict.name == "torch"
    forced = make_engine(model, 1, engine="torch")  # PyTorch fp32 on the GPU, never measured
    assert forced.name == "torch" and np.array_equal(forced(x), fp32)


def test_cuda_visible_devices_hides_a_gpu_without_loading_pytorch(monkeypatch):
    from imagefit.cores import nvidia_gpu_present

    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert nvidia_gpu_present() is False
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert nvidia_gpu_present() is Path("/proc/driver/nvidia/gpus").is_dir()  # this machine's driver, if any
