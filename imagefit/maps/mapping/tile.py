"""`map_tile`: a map run applied to a tile: GeoTIFF, area table, PNG, polygons, metrics against labels."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json
from imagefit.errors import DataError, ModelError, OptionError
from imagefit.inference.calibration import Calibration
from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.inputs.labels import read_labels
from imagefit.maps.inputs.rasters import check_bands, raster_info
from imagefit.maps.inputs.tileset import Roi
from imagefit.maps.mapping.defaults import DEFAULT_WINDOW
from imagefit.maps.mapping.region import map_region, region_of
from imagefit.maps.mapping.window_engines import make_engine
from imagefit.maps.outputs.areas import AreaTable, class_areas, write_areas_csv
from imagefit.maps.outputs.geotiff import write_confidence, write_geotiff
from imagefit.maps.outputs.metrics import confusion, scores_of_confusion
from imagefit.maps.outputs.pictures import save_map_png
from imagefit.maps.outputs.polygons import PolygonWriter, map_transform
from imagefit.maps.outputs.theme_map import UNSURE, ThemeMap

log = logging.getLogger(__name__)


@dataclass
class MapRun:
    """A trained patch classifier with its theme key, patch size and preprocessing."""

    model: object
    key: ThemeKey
    patch: int
    mean: tuple
    std: tuple
    run_dir: Path
    bands: list[int] | None = None  # 1-based image bands it reads (None: all but alpha)
    temperature: float | None = None  # its calibration (None: a run trained without one)


@dataclass
class MapResult:
    """What mapping a tile made: the map, the files written (the map first, then its confidence), its
    areas, and metrics (with a truth)."""

    theme_map: ThemeMap
    files: list[Path] = field(default_factory=list)
    metrics: dict | None = None
    areas: AreaTable | None = None
    confusion: np.ndarray | None = None
    confidence: Path | None = None  # the confidence GeoTIFF beside the map


def confidence_path(out: Path) -> Path:
    """Where the confidence GeoTIFF of map `out` goes: X-map.tif -> X-confidence.tif."""
    stem = out.stem.removesuffix("-map")
    return out.with_name(f"{stem}-confidence.tif")


def check_min_confidence(value: float | None) -> None:
    """A min_confidence is a probability strictly between 0 and 1: an OptionError otherwise."""
    if value is not None and not 0 < value < 1:
        raise OptionError(
            f"--min-confidence must be a probability between 0 and 1 (both excluded), got {value:g}"
        )


def sidecar(out: Path, name: str) -> Path:
    """A file beside the map GeoTIFF `out`, named after it: X-map.tif -> X-map-<name>."""
    return out.with_name(f"{out.stem}-{name}")


def load_map_run(run_dir: str | Path) -> MapRun:
    """The model of a run folder written by map-train."""
    from imagefit.runs import load, read_config

    config = read_config(run_dir)
    if "map" not in config.options:
        raise ModelError(
            f"{run_dir} is a {config.strategy} run, not a map run: train one with imagefit map-train"
        )
    classifier = load(run_dir)
    maps = config.options["map"]
    key = ThemeKey.from_json(maps["key"])
    dc = config.data_config
    model, patch = classifier.model.eval(), int(maps["patch"])
    calibration = Calibration.from_dict(config.calibration)
    temperature = None if calibration is None else calibration.temperature
    return MapRun(model, key, patch, dc["mean"], dc["std"], Path(run_dir), maps.get("bands"), temperature)


def map_tile(
    run_dir: str | Path, tile: str | Path, out: str | Path | None = None, png: bool = False,
    truth: str | Path | None = None, ignore: int | str | None = None, naive: bool = False,
    engine: str = "auto", window: int = DEFAULT_WINDOW, roi: Roi | None = None,
    polygons: str | Path | None = None, simplify: float = 0.0, tta: bool = False,
    min_confidence: float | None = None,
) -> MapResult:  # fmt: skip
    """Map `tile` (or its ROI) with a map run: a GeoTIFF at `out` (default <tile>-map.tif here), its
    confidence GeoTIFF and area table, with `png` a coloured PNG, with `polygons` a GeoPackage of the
    classes, with `truth` (a label raster) metrics.json beside it too; `tta` maps a decoder's windows
    in 8 symmetries; pixels whose calibrated top probability is below `min_confidence` are left unsure
    (no data in the map, out of its areas, polygons and metrics)."""
    check_min_confidence(min_confidence)
    run = load_map_run(run_dir)
    tile = Path(tile)
    region_of(raster_info(tile), roi, run.patch)  # a bad ROI, patch or band fails before any work
    check_bands(tile, run.bands, len(run.mean))
    key = run.key.with_ignore(run.key.ignore if ignore is None else ignore)
    labels = read_truth(truth, tile, key, roi) if truth is not None else None
    out = Path(out) if out is not None else Path(f"{tile.stem}-map.tif")
    model = make_engine(run.model, run.patch, naive, engine, tta, run.temperature)
    writer = PolygonWriter(polygons, simplify) if polygons is not None else nullcontext()
    with writer as polygon_writer:
        result = map_one(run, model, tile, out, key, labels, png, roi, window, polygon_writer, min_confidence)
    if polygons is not None and polygon_writer.count:
        result.files.append(Path(polygons))
    if result.metrics is not None:
        result.metrics.update(naive=naive, tta=tta, truth=str(truth))
        write_json(out.parent / "metrics.json", result.metrics)
        result.files.append(out.parent / "metrics.json")
    return result


def map_one(
    run: MapRun, engine, tile: Path, out: Path, key: ThemeKey, labels: np.ndarray | None = None,
    png: bool = False, roi: Roi | None = None, window: int = DEFAULT_WINDOW,
    polygons: PolygonWriter | None = None, min_confidence: float | None = None,
) -> MapResult:  # fmt: skip
    """Map one tile with a loaded run and engine; write its GeoTIFF, confidence, area table, PNG and
    polygons."""
    theme_map = map_region(engine, tile, run.patch, run.mean, run.std, roi, window, run.bands, min_confidence)
    result = MapResult(theme_map, [write_geotiff(theme_map, key, out)])
    result.confidence = write_confidence(theme_map, confidence_path(out))
    result.files.append(result.confidence)
    unsure = min_confidence is not None
    result.areas = class_areas(theme_map.index, key, map_transform(theme_map), theme_map.source.crs, unsure)
    result.files.append(write_areas_csv(result.areas, sidecar(out, "areas.csv")))
    if png:
        title = f"{tile.name}: {run.run_dir.name}"
        result.files.append(save_map_png(theme_map.index, list(key.names), out.with_suffix(".png"), title))
    if polygons is not None:
        polygons.add(theme_map, key, tile.stem)
    if labels is not None:
        result.confusion = confusion(theme_map.index, labels, len(key.names))
        result.metrics = scores_of_confusion(result.confusion, list(key.names))
        result.metrics["seconds"] = round(theme_map.seconds, 3)
        if unsure:
            result.metrics["unsure"] = unsure_record(theme_map, labels)
    return result


def unsure_record(theme_map: ThemeMap, labels: np.ndarray) -> dict:
    """The pixels left unsure among the labelled ones: their count, share, and the min_confidence."""
    labelled = labels >= 0
    n = int((labelled & (theme_map.index == UNSURE)).sum())
    scored = int((labelled & (theme_map.index >= 0)).sum())
    share = n / max(n + scored, 1)
    return {"min_confidence": theme_map.min_confidence, "pixels": n, "share": round(share, 6)}


def check_truth(path: str | Path, tile: Path) -> None:
    """A label raster must be the tile's size: a DataError naming both sizes otherwise."""
    a, b = raster_info(tile), raster_info(path)
    if (a.height, a.width) != (b.height, b.width):
        raise DataError(
            f"labels {path} are {b.width}x{b.height} but tile {tile} is {a.width}x{a.height}: they must match"
        )


def read_truth(path: str | Path, tile: Path, key: ThemeKey, roi: Roi | None = None) -> np.ndarray:
    """Class indices of a label raster, checked to match the tile's size (and cut to the ROI)."""
    check_truth(path, tile)
    window = None
    if roi is not None:
        (x0, y0), (x1, y1) = roi
        window = (y0, x0, y1 - y0, x1 - x0)
    return read_labels(path, key, window)
