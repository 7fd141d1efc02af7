"""`map_tiles`: many tiles mapped into one folder, with per-tile and pooled metrics, areas and a VRT mosaic.

For each tile X: `X-map.tif`, `X-confidence.tif`, `X-map-areas.csv`, with a truth
`X-map-metrics.json` (and `X-map.png` with `png`, `X-map-polygons.gpkg` with polygons), and last
`X-map-done.json`, its record. For the set: `tiles.csv` (a row per tile), `areas.csv` (classes summed
over the tiles), `metrics.json` (pooled over every tile that has a truth, from the summed confusion
matrices), `mosaic.vrt` when the maps are georeferenced in one CRS, and the polygons of every tile in
one GeoPackage. Every input is checked before the first tile is mapped, and every file is written
atomically: a rerun skips the tiles an earlier run completed. Under torchrun the ranks (on one
machine or many sharing the folder) map their share of the tiles and rank 0 writes the set's files.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json, write_text
from imagefit.maps.inputs.rasters import check_bands, raster_info
from imagefit.maps.inputs.sources import collect_tiles, pair_truths
from imagefit.maps.mapping.defaults import DEFAULT_WINDOW
from imagefit.maps.mapping.progress import MapProgress
from imagefit.maps.mapping.records import TileRecord, read_record, record_path, write_record
from imagefit.maps.mapping.region import WindowReader, region_of
from imagefit.maps.mapping.tile import (
    check_min_confidence,
    check_truth,
    clear_partial,
    load_map_run,
    map_engine,
    map_one,
    sidecar,
)
from imagefit.maps.outputs.areas import AreaTable, write_areas_csv
from imagefit.maps.outputs.metrics import scores_of_confusion
from imagefit.maps.outputs.mosaic import mosaic_problem, write_mosaic
from imagefit.maps.outputs.polygons import PolygonWriter, merge_polygons
from imagefit.train.engine import distributed

log = logging.getLogger(__name__)


@dataclass
class TilesResult:
    """What `map_tiles` made: a record per tile, pooled metrics and areas, the mosaic (or why none)."""

    tiles: list[TileRecord]
    metrics: dict | None
    areas: AreaTable
    mosaic: Path | None
    no_mosaic: str = ""
    files: list[Path] = field(default_factory=list)  # each tile's
    summary: list[Path] = field(default_factory=list)  # the set's: tiles.csv, metrics, mosaic, polygons
    skipped: int = 0  # tiles an earlier run had mapped, kept as they were


def map_tiles(
    run_dir: str | Path, inputs: list[str | Path], out_dir: str | Path, truth: str | Path | None = None,
    ignore: int | str | None = None, png: bool = False, polygons: str | Path | None = None,
    simplify: float = 0.0, naive: bool = False, engine: str = "auto", window: int = DEFAULT_WINDOW,
    progress: bool = True, tta: bool = False, min_confidence: float | None = None,
) -> TilesResult | None:  # fmt: skip
    """Map every tile of `inputs` (files, folders, glob patterns) into `out_dir` with a map run;
    pixels whose calibrated top probability is below `min_confidence` are left unsure.

    Tiles whose outputs an earlier run with the same settings completed are kept. Under torchrun the
    ranks share the tiles by size, and rank 0 writes the set's files once every rank is done (the
    other ranks return None)."""
    check_min_confidence(min_confidence)
    distributed.init()
    run = load_map_run(run_dir, model=False)  # loaded only if no cached graph maps it
    out_dir = Path(out_dir)
    tiles = collect_tiles(inputs, exclude=out_dir)
    truths = pair_truths(tiles, truth)
    sizes = distributed.agree(lambda: _check_inputs(tiles, truths, run), "checking the tiles")
    key = run.key.with_ignore(run.key.ignore if ignore is None else ignore)
    settings = {
        "run": str(Path(run_dir).resolve()), "naive": naive, "engine": engine, "window": window, "tta": tta,
        "min_confidence": min_confidence, "ignore": key.ignore, "png": png, "polygons": polygons is not None,
        "simplify": simplify,
    }  # fmt: skip
    mine = share(tiles, sizes, distributed.world_size())[distributed.rank()]
    done = [t for t in mine if read_record(_out(out_dir, t), key, settings) is not None]
    skipped = int(distributed.all_sum([len(done)], "finding the tiles mapped before")[0])
    # the ranks of a world (maybe on unlike machines) map with the engine rank 0 decides, never a cached one
    model = map_engine(run, naive, engine, tta, cached=not distributed.active())
    _same_engine(model, run, tiles[0], window)
    with MapProgress([(t, sizes[t]) for t in mine], progress) as bar:
        for tile in mine:
            if tile in done:
                bar.skip(tile)
                continue
            _map_tile(run, model, tile, out_dir, key, truths.get(tile), settings, bar.advance)
            bar.tile_done(tile)
    if done:
        log.info("%d tile(s) mapped by an earlier run with these settings: kept", len(done))
    if not distributed.is_main():
        return None
    records = _wait_for_records([_out(out_dir, t) for t in tiles], key, settings)
    result = _summarise(records, out_dir, list(key.names), key, min_confidence)
    result.files, result.skipped = [out_dir / name for r in records for name in r.files], skipped
    parts = [r.polygons for r in records if r.polygons is not None]
    if polygons is not None and parts:
        result.summary.append(merge_polygons(parts, Path(polygons), key, simplify))
    return result


def share(tiles: list[Path], sizes: dict[Path, int], ranks: int) -> list[list[Path]]:
    """The tiles of each of `ranks` ranks, balanced by pixels (the largest first, each to the least
    loaded rank), each share in the tiles' order: every rank computes the same shares."""
    loads, shares = [0] * ranks, [set() for _ in range(ranks)]
    for tile in sorted(tiles, key=lambda t: (-sizes[t], str(t))):
        r = loads.index(min(loads))
        loads[r] += sizes[tile]
        shares[r].add(tile)
    return [[t for t in tiles if t in chosen] for chosen in shares]


def _same_engine(model, run, tile: Path, window: int) -> None:
    """An engine chosen once for every rank (a CPU engine by measurement, or AMP on a GPU): rank 0
    decides (remembered, or measured on the first tile's first window) and tells the others, so that
    all map as one process would."""
    chosen = model
    while not hasattr(chosen, "decide") and hasattr(chosen, "engine"):
        chosen = chosen.engine  # through temperature and symmetries
    if not hasattr(chosen, "decide"):  # an engine that chooses nothing (ChosenDecoderEngine, GpuEngine do)
        return
    kind = [None]
    if distributed.is_main():
        info = raster_info(tile)
        read = WindowReader(tile, info, run.mean, run.std, run.bands)
        kind[0] = chosen.decide(read(0, 0, min(window, info.height), min(window, info.width)))
    if distributed.active():
        import torch.distributed as dist

        dist.broadcast_object_list(kind, src=0)
    chosen.use(kind[0])


def _wait_for_records(maps: list[Path], key, settings: dict, poll_s: float = 1.0) -> list[TileRecord]:
    """The record of every map, waiting for those other ranks are still mapping (on this machine or
    others sharing the folder; torchrun ends every rank if one fails, so the wait cannot hang)."""
    records: dict[Path, TileRecord] = {}
    last_said = time.monotonic()
    while len(records) < len(maps):
        for out in maps:
            if out not in records and (record := read_record(out, key, settings)) is not None:
                records[out] = record
        if len(records) < len(maps):
            if time.monotonic() - last_said > 60:
                log.info("waiting for the other ranks: %d of %d tiles mapped", len(records), len(maps))
                last_said = time.monotonic()
            time.sleep(poll_s)
    return [records[out] for out in maps]


def _out(out_dir: Path, tile: Path) -> Path:
    return out_dir / f"{tile.stem}-map.tif"


def _map_tile(
    run, model, tile: Path, out_dir: Path, key, truth: Path | None, settings: dict, advance
) -> None:
    """Map one tile into `out_dir`: its outputs, then its record (last)."""
    out = _out(out_dir, tile)
    record_path(out).unlink(missing_ok=True)  # an earlier run's, whose files are gone or other
    clear_partial(out)  # a killed run's
    polygons = sidecar(out, "polygons.gpkg") if settings["polygons"] else None
    writer = PolygonWriter(polygons, settings["simplify"]) if polygons else nullcontext()
    with writer as polygon_writer:
        result = map_one(
            run, model, tile, out, key, truth, settings["png"], None, settings["window"], polygon_writer,
            settings["min_confidence"], settings["simplify"], advance,
        )  # fmt: skip
    if polygons is not None and polygon_writer.count:
        result.files.append(polygons)
    else:
        polygons = None
    if result.metrics is not None:
        result.metrics.update(tile=str(tile), truth=str(truth), naive=settings["naive"], tta=settings["tta"])
        write_json(sidecar(out, "metrics.json"), result.metrics)
        result.files.append(sidecar(out, "metrics.json"))
    tm = result.streamed
    record = TileRecord(
        tile, out, truth, tm.region.width, tm.region.height, tm.mapped, tm.seconds, result.areas,
        result.metrics, result.confusion, tm.unsure, tuple(Path(f).name for f in result.files), polygons,
    )  # fmt: skip
    write_record(record, settings)


def _check_inputs(tiles: list[Path], truths: dict[Path, Path], run) -> dict[Path, int]:
    """Every tile readable, large enough and with the run's bands, every truth the size of its tile:
    before any work. The pixels of each tile."""
    sizes = {}
    for tile in tiles:
        region = region_of(raster_info(tile), None, run.patch)
        sizes[tile] = region.height * region.width
        check_bands(tile, run.bands, len(run.mean))
        if tile in truths:
            check_truth(truths[tile], tile)
    missing = [t.name for t in tiles if truths and t not in truths]
    if missing:
        names = ", ".join(missing)
        log.warning("no label raster for %d tile(s), mapped without metrics: %s", len(missing), names)
    return sizes


def _summarise(
    records: list[TileRecord], out_dir: Path, classes: list[str], key, min_confidence: float | None = None
) -> TilesResult:
    """Pooled metrics and areas, tiles.csv and the mosaic, once every tile is mapped."""
    areas = records[0].areas
    for record in records[1:]:
        areas = areas + record.areas
    files = [write_areas_csv(areas, out_dir / "areas.csv"), _write_tiles_csv(records, classes, out_dir)]
    scored = [r.confusion for r in records if r.confusion is not None]
    metrics = None
    if scored:
        metrics = scores_of_confusion(np.sum(scored, axis=0), classes)
        metrics.update(tiles=len(scored), tiles_mapped=len(records), pooled="summed confusion matrices")
        if min_confidence is not None:
            unsure = sum(r.metrics["unsure"]["pixels"] for r in records if r.metrics is not None)
            share = unsure / max(unsure + metrics["pixels"], 1)
            metrics["unsure"] = {"min_confidence": min_confidence, "pixels": unsure, "share": round(share, 6)}
        write_json(out_dir / "metrics.json", metrics)
        files.append(out_dir / "metrics.json")
    maps = [r.map for r in records]
    problem = mosaic_problem(maps)
    mosaic = None if problem else write_mosaic(maps, out_dir / "mosaic.vrt", key)
    if problem:
        log.warning("no mosaic.vrt: %s", problem)
    else:
        files.append(mosaic)
    return TilesResult(records, metrics, areas, mosaic, problem, summary=files)


def _write_tiles_csv(records: list[TileRecord], classes: list[str], out_dir: Path) -> Path:
    """tiles.csv: a row per tile with its files, size, time and (with a truth) its metrics."""
    buffer = io.StringIO()
    fields = ["tile", "map", "truth", "width", "height", "mapped_pixels", "unsure_pixels", "seconds"]
    fields += ["pixel_accuracy", "miou", "scored_pixels", *(f"iou_{name}" for name in classes)]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = {"tile": str(r.tile), "map": r.map.name, "truth": str(r.truth or ""), "width": r.width}
        row.update(
            height=r.height, mapped_pixels=r.mapped, unsure_pixels=r.unsure, seconds=round(r.seconds, 3)
        )
        if r.metrics is not None:
            row.update(pixel_accuracy=r.metrics["pixel_accuracy"], miou=r.metrics["miou"])
            row["scored_pixels"] = r.metrics["pixels"]
            row.update({f"iou_{n}": ("" if v is None else v) for n, v in r.metrics["iou"].items()})
        writer.writerow(row)
    path = out_dir / "tiles.csv"
    write_text(path, buffer.getvalue())
    return path
