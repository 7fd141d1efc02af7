"""`map_tile`: a map run applied to a tile: GeoTIFF, area table, PNG, polygons, metrics against labels."""

from __future__ import annotations

import glob
import logging
import shutil
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagefit.cores import nvidia_gpu_present
from imagefit.data.atomic import write_json
from imagefit.errors import DataError, ModelError, OptionError
from imagefit.inference.calibration import Calibration
from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.inputs.rasters import check_bands, raster_info
from imagefit.maps.inputs.tileset import Roi
from imagefit.maps.mapping.defaults import DEFAULT_WINDOW
from imagefit.maps.mapping.graph_engine import GRAPH_ENGINES, cached_graph_engine, run_key
from imagefit.maps.mapping.progress import MapProgress
from imagefit.maps.mapping.region import region_of
from imagefit.maps.mapping.streaming import MapTarget, StreamedMap, picture_index, stream_map
from imagefit.maps.mapping.view_engines import with_views
from imagefit.maps.outputs.areas import AreaTable, write_areas_csv
from imagefit.maps.outputs.metrics import scores_of_confusion
from imagefit.maps.outputs.pictures import save_map_png
from imagefit.maps.outputs.polygons import PolygonWriter

log = logging.getLogger(__name__)


@dataclass
class MapRun:
    """A trained patch classifier (None until loaded) with its theme key, patch size and preprocessing."""

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
    """What mapping a tile made: what streaming it counted, the files written (the map first, then its
    confidence), its areas, and metrics (with a truth)."""

    streamed: StreamedMap
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


def clear_partial(out: Path) -> None:
    """Remove what a killed map to `out` left half-written: the temporary files and folders of its
    GeoTIFFs and sidecars (`.X-map.tif.*`, `.X-map-areas.csv.*`, `.X-confidence.tif.*`...), never
    a finished file."""
    names = (f"{out.stem}.", f"{out.stem}-", f"{confidence_path(out).stem}.")
    for stale in [p for name in names for p in out.parent.glob(f".{glob.escape(name)}*")]:
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def sidecar(out: Path, name: str) -> Path:
    """A file beside the map GeoTIFF `out`, named after it: X-map.tif -> X-map-<name>."""
    return out.with_name(f"{out.stem}-{name}")


def load_map_run(run_dir: str | Path, model: bool = True) -> MapRun:
    """The model of a run folder written by map-train; without `model`, its settings only (no PyTorch)."""
    from imagefit.runs import read_config

    config = read_config(run_dir)
    if "map" not in config.options:
        raise ModelError(
            f"{run_dir} is a {config.strategy} run, not a map run: train one with imagefit map-train"
        )
    maps = config.options["map"]
    key = ThemeKey.from_json(maps["key"])
    dc = config.data_config
    calibration = Calibration.from_dict(config.calibration)
    temperature = None if calibration is None else calibration.temperature
    run = MapRun(
        None, key, int(maps["patch"]), dc["mean"], dc["std"], Path(run_dir), maps.get("bands"), temperature
    )
    if model:
        load_model(run)
    return run


def load_model(run: MapRun):
    """The run's network, loaded with PyTorch (once)."""
    if run.model is None:
        from imagefit.runs import load

        run.model = load(run.run_dir).model.eval()
    return run.model


def map_engine(
    run: MapRun, naive: bool = False, engine: str = "auto", tta: bool = False, cached: bool = True
):  # fmt: skip
    """The engine that maps with the run: a decoder's cached graph on the engine chosen for it on this
    machine when there is one and `cached` (no PyTorch; with `auto`, only where there is no GPU),
    else the run's network (`window_engines.make_engine`), whose graph and choice are cached for
    next time."""
    gpu = engine == "auto" and nvidia_gpu_present()  # auto maps on a GPU, never with a CPU graph
    decoder = run.patch == 1  # a decoder's graph pads to its stride: the cached graphs are decoders'
    if cached and decoder and not naive and not gpu and engine in ("auto", *GRAPH_ENGINES):
        graph = cached_graph_engine(run.run_dir, engine)
        if graph is not None:
            return with_views(graph, tta, run.temperature)
    from imagefit.maps.mapping.window_engines import make_engine

    return make_engine(load_model(run), run.patch, naive, engine, tta, run.temperature, run_key(run.run_dir))


def map_tile(
    run_dir: str | Path, tile: str | Path, out: str | Path | None = None, png: bool = False,
    truth: str | Path | None = None, ignore: int | str | None = None, naive: bool = False,
    engine: str = "auto", window: int = DEFAULT_WINDOW, roi: Roi | None = None,
    polygons: str | Path | None = None, simplify: float = 0.0, tta: bool = False,
    min_confidence: float | None = None, progress: bool = False,
) -> MapResult:  # fmt: skip
    """Map `tile` (or its ROI) with a map run: a GeoTIFF at `out` (default <tile>-map.tif here), its
    confidence GeoTIFF and area table, with `png` a coloured PNG, with `polygons` a GeoPackage of the
    classes, with `truth` (a label raster) metrics.json beside it too; `tta` maps a decoder's windows
    in 8 symmetries; pixels whose calibrated top probability is below `min_confidence` are left unsure
    (no data in the map, out of its areas, polygons and metrics); `progress` shows a progress bar."""
    check_min_confidence(min_confidence)
    run = load_map_run(run_dir, model=False)
    tile = Path(tile)
    region = region_of(raster_info(tile), roi, run.patch)  # a bad ROI, patch or band fails before any work
    check_bands(tile, run.bands, len(run.mean))
    key = run.key.with_ignore(run.key.ignore if ignore is None else ignore)
    if truth is not None:
        check_truth(truth, tile)
    out = Path(out) if out is not None else Path(f"{tile.stem}-map.tif")
    clear_partial(out)
    model = map_engine(run, naive, engine, tta)
    writer = PolygonWriter(polygons, simplify) if polygons is not None else nullcontext()
    options = dict(png=png, roi=roi, window=window, min_confidence=min_confidence)
    with writer as polygon_writer, MapProgress([(tile, region.height * region.width)], progress) as bar:
        result = map_one(run, model, tile, out, key, truth, polygons=polygon_writer, simplify=simplify,
                         progress=bar.advance, **options)  # fmt: skip
        bar.tile_done(tile)
    if polygons is not None and polygon_writer.count:
        result.files.append(Path(polygons))
    if result.metrics is not None:
        result.metrics.update(naive=naive, tta=tta, truth=str(truth))
        write_json(out.parent / "metrics.json", result.metrics)
        result.files.append(out.parent / "metrics.json")
    return result


def map_one(
    run: MapRun, engine, tile: Path, out: Path, key: ThemeKey, truth: Path | None = None,
    png: bool = False, roi: Roi | None = None, window: int = DEFAULT_WINDOW,
    polygons: PolygonWriter | None = None, min_confidence: float | None = None, simplify: float = 0.0,
    progress=None,
) -> MapResult:  # fmt: skip
    """Map one tile with a loaded run and engine, streamed: its GeoTIFF, confidence, area table, PNG
    and polygons (added to the `polygons` writer; None: none made)."""
    info = raster_info(tile)
    region = region_of(info, roi, run.patch)
    truth = Path(truth) if truth else None
    target = MapTarget(out, confidence_path(out), truth, polygons is not None, simplify)
    streamed = stream_map(
        engine, tile, region, info, run.patch, run.mean, run.std, key, target, window, run.bands,
        min_confidence, progress,
    )  # fmt: skip
    result = MapResult(streamed, [out, target.confidence], areas=streamed.areas, confidence=target.confidence)
    result.files.append(write_areas_csv(result.areas, sidecar(out, "areas.csv")))
    if png:
        title = f"{tile.name}: {run.run_dir.name}"
        index = picture_index(out, key)
        result.files.append(save_map_png(index, list(key.names), out.with_suffix(".png"), title))
    if polygons is not None:
        polygons.add_polygons(streamed.polygons, key, tile.stem)
    if streamed.confusion is not None:
        result.confusion = streamed.confusion
        result.metrics = scores_of_confusion(result.confusion, list(key.names))
        result.metrics["seconds"] = round(streamed.seconds, 3)
        if min_confidence is not None:
            result.metrics["unsure"] = unsure_record(streamed, min_confidence)
    return result


def unsure_record(streamed: StreamedMap, min_confidence: float) -> dict:
    """The pixels left unsure among the labelled ones: their count, share, and the min_confidence."""
    n = streamed.unsure_labelled
    scored = int(streamed.confusion.sum())
    share = n / max(n + scored, 1)
    return {"min_confidence": min_confidence, "pixels": n, "share": round(share, 6)}


def check_truth(path: str | Path, tile: Path) -> None:
    """A label raster must be the tile's size: a DataError naming both sizes otherwise."""
    a, b = raster_info(tile), raster_info(path)
    if (a.height, a.width) != (b.height, b.width):
        raise DataError(
            f"labels {path} are {b.width}x{b.height} but tile {tile} is {a.width}x{a.height}: they must match"
        )
