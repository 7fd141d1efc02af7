"""The tiles named on a map command line (files, folders, glob patterns) and the label raster of each."""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable
from pathlib import Path

from imagefit.errors import DataError

RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".vrt")
LABEL_PATTERNS = ("{stem}-theme", "{stem}")  # the seeds' X-theme.png, or the tile's own stem
_SOURCE = re.compile(rb"<(Simple|Complex|Averaged|Kernel)Source\b")


def is_raster(path: Path) -> bool:
    """Whether a file name has a raster suffix that `map` reads (and is not hidden)."""
    return path.suffix.lower() in RASTER_SUFFIXES and not path.name.startswith(".")


def collect_tiles(inputs: Iterable[str | Path], exclude: Path | None = None) -> list[Path]:
    """Expand files, folders (recursively, sorted) and glob patterns into tiles, leaving out `exclude`.

    Zero tiles, a missing path, a VRT without sources or two tiles with one stem (their outputs
    would share names) are DataErrors naming the input.
    """
    tiles: list[Path] = []
    for item in inputs:
        found = _expand(str(item), exclude)
        if not found:
            inside = exclude is not None and _expand(str(item), None)
            why = f": the only ones are in the output folder {exclude}" if inside else ""
            raise DataError(f"{item} holds no raster tiles ({', '.join(RASTER_SUFFIXES)}){why}")
        tiles.extend(found)
    for tile in tiles:
        if tile.suffix.lower() == ".vrt":
            _check_vrt(tile)
    _check_stems(tiles)
    return tiles


def _expand(item: str, exclude: Path | None) -> list[Path]:
    path = Path(item)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and is_raster(p))
        hidden = [p for p in found if any(part.startswith(".") for part in p.relative_to(path).parts)]
        return [p for p in found if p not in hidden and not _inside(p, exclude)]
    if path.is_file():
        if not is_raster(path):
            raise DataError(f"{path} is not a raster tile ({', '.join(RASTER_SUFFIXES)})")
        return [path]
    if glob.has_magic(item):
        matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
        return [p for p in matches if p.is_file() and is_raster(p) and not _inside(p, exclude)]
    raise DataError(f"{path} does not exist: give raster files, folders of them or glob patterns")


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and folder.resolve() in path.resolve().parents


def _check_vrt(path: Path) -> None:
    if not _SOURCE.search(path.read_bytes()):
        raise DataError(f"{path} is a VRT of zero tiles: it names no source raster")


def _check_stems(tiles: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for tile in tiles:
        other = seen.setdefault(tile.stem, tile)
        if other != tile:
            raise DataError(
                f"{other} and {tile} have the same name {tile.stem!r}: their maps would overwrite "
                "each other; map them with separate --out-dir folders"
            )


def pair_truths(tiles: list[Path], truth: str | Path | None) -> dict[Path, Path]:
    """The label raster of each tile that has one: `truth` itself for a single tile, or from a folder
    `X-theme.<ext>` or `X.<ext>` for tile `X`. A truth that fits no tile is a DataError."""
    if truth is None:
        return {}
    truth = Path(truth)
    if truth.is_file():
        if len(tiles) != 1:
            raise DataError(
                f"--truth {truth} is one label raster for {len(tiles)} tiles: give a folder of label "
                "rasters named like the tiles (X-theme.png or X.png)"
            )
        return {tiles[0]: truth}
    if not truth.is_dir():
        raise DataError(f"--truth {truth} does not exist: give a label raster or a folder of them")
    files = {p.name.lower(): p for p in truth.iterdir() if p.is_file() and is_raster(p)}
    pairs = {tile: label for tile in tiles if (label := _label_of(tile, files)) is not None}
    if not pairs:
        raise DataError(
            f"--truth {truth} holds no label raster for any of the {len(tiles)} tiles "
            f"(looked for {tiles[0].stem}-theme.png or {tiles[0].stem}.png and other raster suffixes)"
        )
    return pairs


def _label_of(tile: Path, files: dict[str, Path]) -> Path | None:
    for pattern in LABEL_PATTERNS:
        for suffix in RASTER_SUFFIXES:
            found = files.get((pattern.format(stem=tile.stem) + suffix).lower())
            if found is not None and found.resolve() != tile.resolve():
                return found
    return None
