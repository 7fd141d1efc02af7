"""`map_tiles`: many tiles mapped into one folder, with per-tile and pooled metrics, areas and a VRT mosaic.

For each tile X: `X-map.tif`, `X-confidence.tif`, `X-map-areas.csv`, with a truth
`X-map-metrics.json` (and `X-map.png` with `png`). For the set: `tiles.csv` (a row per tile),
`areas.csv` (classes summed over the tiles), `metrics.json` (pooled over every tile that has a
truth, from the summed confusion matrices) and `mosaic.vrt` when the maps are georeferenced in one
CRS. Every input is checked before the first
tile is mapped, and every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json, write_text
from imagefit.maps.inputs.rasters import check_bands, raster_info
from imagefit.maps.inputs.sources import collect_tiles, pair_truths
from imagefit.maps.mapping.defaults import DEFAULT_WINDOW
from imagefit.maps.mapping.progress import MapProgress
from imagefit.maps.mapping.region import region_of
from imagefit.maps.mapping.tile import (
    MapResult,
    check_min_confidence,
    check_truth,
    load_map_run,
    map_one,
    sidecar,
)
from imagefit.maps.mapping.window_engines import make_engine
from imagefit.maps.outputs.areas import AreaTable, write_areas_csv
from imagefit.maps.outputs.metrics import scores_of_confusion
from imagefit.maps.outputs.mosaic import mosaic_problem, write_mosaic
from imagefit.maps.outputs.polygons import PolygonWriter

log = logging.getLogger(__name__)


@dataclass
class TileRecord:
    """One mapped tile: its files, size, time, areas and (with a truth) metrics and confusion matrix."""

    tile: Path
    map: Path
    truth: Path | None
    width: int
    height: int
    mapped: int
    seconds: float
    areas: AreaTable
    metrics: dict | None = None
    confusion: np.ndarray | None = None
    unsure: int = 0  # pixels left out as below min_confidence


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


def map_tiles(
    run_dir: str | Path, inputs: list[str | Path], out_dir: str | Path, truth: str | Path | None = None,
    ignore: int | str | None = None, png: bool = False, polygons: str | Path | None = None,
    simplify: float = 0.0, naive: bool = False, engine: str = "auto", window: int = DEFAULT_WINDOW,
    progress: bool = True, tta: bool = False, min_confidence: float | None = None,
) -> TilesResult:  # fmt: skip
    """Map every tile of `inputs` (files, folders, glob patterns) into `out_dir` with a map run;
    pixels whose calibrated top probability is below `min_confidence` are left unsure."""
    check_min_confidence(min_confidence)
    run = load_map_run(run_dir)
    out_dir = Path(out_dir)
    tiles = collect_tiles(inputs, exclude=out_dir)
    truths = pair_truths(tiles, truth)
    sizes = _check_inputs(tiles, truths, run)
    key = run.key.with_ignore(run.key.ignore if ignore is None else ignore)
    model = make_engine(run.model, run.patch, naive, engine, tta, run.temperature)
    records, files = [], []
    writer = PolygonWriter(polygons, simplify) if polygons is not None else nullcontext()
    with MapProgress(list(sizes.items()), progress) as bar, writer as polygon_writer:
        for tile in tiles:
            out = out_dir / f"{tile.stem}-map.tif"
            result = map_one(
                run, model, tile, out, key, truths.get(tile), png, None, window, polygon_writer,
                min_confidence, simplify, bar.advance,
            )  # fmt: skip
            records.append(_record(tile, out, truths.get(tile), result))
            files.extend(result.files)
            if result.metrics is not None:
                result.metrics.update(tile=str(tile), truth=str(truths[tile]), naive=naive, tta=tta)
                write_json(sidecar(out, "metrics.json"), result.metrics)
                files.append(sidecar(out, "metrics.json"))
            bar.tile_done(tile)
    result = _summarise(records, out_dir, list(key.names), key, min_confidence)
    result.files = files
    if polygons is not None and polygon_writer.count:
        result.summary.append(Path(polygons))
    return result


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


def _record(tile: Path, out: Path, truth: Path | None, result: MapResult) -> TileRecord:
    tm = result.streamed
    return TileRecord(
        tile, out, truth, tm.region.width, tm.region.height, tm.mapped, tm.seconds, result.areas,
        result.metrics, result.confusion, tm.unsure,
    )  # fmt: skip


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
