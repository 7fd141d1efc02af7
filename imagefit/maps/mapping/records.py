"""A mapped tile's record: written last, it says the tile's outputs are complete, and holds what the
set's summary needs (size, time, areas, confusion matrix), so that a rerun skips the tile and rank 0
of a torchrun world summarises tiles other ranks (or machines) mapped.

Every output takes its final name only once complete (a temporary name is renamed), and the record
`X-map-done.json` is renamed last: a tile whose record is missing, unreadable, made with other
settings, or whose files are gone is mapped again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json
from imagefit.maps.outputs.areas import AreaTable

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
    files: tuple[str, ...] = ()  # the tile's outputs, by name, in its folder
    polygons: Path | None = None  # the tile's polygons (a GeoPackage beside its map)


def record_path(out: Path) -> Path:
    """Where the record of the tile mapped to `out` goes: X-map.tif -> X-map-done.json."""
    return out.with_name(f"{out.stem}-done.json")


def write_record(record: TileRecord, settings: dict) -> Path:
    """The record beside its map, with the settings it was made with: the tile's last file."""
    a = record.areas
    data = {
        "settings": settings, "tile": str(record.tile), "map": record.map.name,
        "truth": str(record.truth) if record.truth else None, "width": record.width,
        "height": record.height, "mapped": record.mapped, "unsure": record.unsure,
        "seconds": record.seconds, "files": list(record.files),
        "polygons": record.polygons.name if record.polygons else None,
        "areas": {
            "pixels": a.pixels.tolist(), "hectares": None if a.hectares is None else a.hectares.tolist(),
            "why": a.why, "unsure": None if a.unsure is None else a.unsure.tolist(),
        },
        "metrics": record.metrics,
        "confusion": None if record.confusion is None else record.confusion.tolist(),
    }  # fmt: skip
    path = record_path(record.map)
    write_json(path, data)
    return path


def read_record(out: Path, key, settings: dict | None = None) -> TileRecord | None:
    """The record of the tile mapped to `out` if its outputs are complete and were made with
    `settings` (None: any); None when the tile must be mapped (again)."""
    path = record_path(out)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if settings is not None and data.get("settings") != settings:
        log.info("%s was mapped with other settings: mapping it again", data.get("tile"))
        return None
    missing = [name for name in data["files"] if not (out.parent / name).is_file()]
    if missing or not _opens(out):
        log.info("%s lost %s: mapping it again", data["tile"], ", ".join(missing) or out.name)
        return None
    a = data["areas"]
    hectares = None if a["hectares"] is None else np.array(a["hectares"], np.float64)
    unsure = None if a["unsure"] is None else np.array(a["unsure"], np.float64)
    areas = AreaTable(key.names, key.values, np.array(a["pixels"], np.int64), hectares, a["why"], unsure)
    confusion = None if data["confusion"] is None else np.array(data["confusion"], np.int64)
    return TileRecord(
        Path(data["tile"]), out, Path(data["truth"]) if data["truth"] else None, data["width"],
        data["height"], data["mapped"], data["seconds"], areas, data["metrics"], confusion,
        data["unsure"], tuple(data["files"]), out.parent / data["polygons"] if data["polygons"] else None,
    )  # fmt: skip


def _opens(path: Path) -> bool:
    """True when `path` opens as a raster."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            return ds.width > 0
    except rasterio.errors.RasterioIOError:
        return False
