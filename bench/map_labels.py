"""The same theme maps from labels as they come: value rasters, colour masks, a vector layer.

    python -m bench.map_labels [--work DIR] [--refs T1 T2 ...] [--train MODEL] [map-train options]

The shared aerial tiles carry their labels twice (`theme/` 16-bit values with key-theme.txt,
`masks/` colours as published); the bench adds a third form, the one a GIS analyst has: the theme
rasters polygonised (rasterio.features.shapes) onto a made-up georeferenced grid (each image a
GeoTIFF in UTM zone 40N, EPSG:32640, at its own place) and written as one GeoPackage layer in
WGS 84 (EPSG:4326), so that reading it back reprojects every polygon. For every image it reads the
class indices of each form through `TileSet` and counts the pixels that differ from the value
rasters, with the time each form took.

With `--train MODEL` it then trains MODEL from each form (`--forms` to choose) with bench.maps'
protocol and options (every image of tiles 1-5 and 8, one held out for validation, classes
balanced, the model's bench.maps settings) and maps the 9 images of tile 6 with each run against
its own form of the labels (the colour masks for the run trained from them, the value rasters
otherwise; the comparison shows them equal): pooled pixel accuracy and mIoU. `--threads` sets
torch's threads (the same count for every form: results are then repeatable to the bit).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import DATA
from bench.maps import MODELS

TILES = DATA / "aerial-tiles"
UTM, WGS84 = "EPSG:32640", "EPSG:4326"
COLOURS = {  # the masks' published colours (../shared/data/README.md)
    "Building": "#3C1098", "Land (unpaved area)": "#8429F6", "Road": "#6EC1E4",
    "Vegetation": "#FEDD3A", "Water": "#E2A929", "Unlabeled": "#9B9B9B",
}  # fmt: skip
GROUPS = ("T1", "T2", "T3", "T4", "T5", "T6", "T8")
VALID_6 = "T3P01"  # the published protocol: train on tiles 1-5 and 8 but this image, map tile 6


def refs_of(groups) -> list[str]:
    return sorted(p.stem for p in (TILES / "3band").glob("*.jpg") if p.stem[:2] in groups)


def georeference(refs: list[str], work: Path) -> Path:
    """Each image as a GeoTIFF at its own place on a 0.5 m UTM grid; returns the folder."""
    import rasterio
    from rasterio.transform import from_origin

    from imagefit.maps.inputs.rasters import read_image

    folder = work / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for k, ref in enumerate(refs):
        path = folder / f"{ref}.tif"
        if path.exists():
            continue
        pixels, _ = read_image(TILES / "3band" / f"{ref}.jpg")
        transform = from_origin(300000.0 + 2000.0 * k, 2780000.0, 0.5, 0.5)
        profile = {
            "driver": "GTiff", "height": pixels.shape[0], "width": pixels.shape[1], "count": 3,
            "dtype": "uint8", "crs": UTM, "transform": transform, "tiled": True, "compress": "deflate",
        }  # fmt: skip
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(pixels.transpose(2, 0, 1))
    return folder


def polygonise(refs: list[str], images: Path, path: Path) -> tuple[Path, int]:
    """The theme rasters as polygons with a `theme` attribute (class name), one layer in WGS 84."""
    import pyogrio.raw
    import rasterio
    import shapely
    from rasterio.features import shapes
    from rasterio.warp import transform_geom

    from imagefit.maps.inputs.key import read_key

    key = read_key(TILES / "key-theme.txt")
    names = dict(zip(key.values, key.names, strict=True))
    geoms, themes = [], []
    for ref in refs:
        with rasterio.open(TILES / "theme" / f"{ref}-theme.png") as ds:
            values = ds.read(1).astype(np.int32)
        with rasterio.open(images / f"{ref}.tif") as ds:
            transform = ds.transform
        for geom, value in shapes(values, mask=values > 0, transform=transform):
            geoms.append(shapely.geometry.shape(transform_geom(UTM, WGS84, geom)))
            themes.append(names[int(value)])
    wkb = shapely.to_wkb(np.array(geoms, dtype=object))
    path.unlink(missing_ok=True)
    pyogrio.raw.write(
        path, wkb, [np.array(themes, dtype=object)], ["theme"], geometry_type="Polygon", crs=WGS84,
        driver="GPKG",
    )  # fmt: skip
    return path, len(geoms)


def protocol() -> tuple[list[str], list[str]]:
    """The training images and the 9 held-out images of tile 6."""
    train = [ref for ref in refs_of(("T1", "T2", "T3", "T4", "T5", "T8")) if ref != VALID_6]
    return train, refs_of(("T6",))


def sources(work: Path, refs: list[str]) -> dict[str, dict]:
    """The TileSet arguments of each form of the labels (the images are the same GeoTIFFs)."""
    images = georeference(refs, work)
    colour_key = work / "key-colours.txt"
    colour_key.write_text("".join(f"{name}\t{colour}\n" for name, colour in COLOURS.items()))
    started = time.perf_counter()
    layer, n = polygonise(refs, images, work / "landcover.gpkg")
    print(f"vector layer: {n} polygons of {len(refs)} images in {time.perf_counter() - started:.1f} s")
    return {
        "values": {"images": images, "labels": TILES / "theme", "key": TILES / "key-theme.txt", "ignore": 0},
        "colours": {"images": images, "labels": TILES / "masks", "key": colour_key, "ignore": "#000000"},
        "vector": {"images": images, "vector": layer, "attribute": "theme", "key": TILES / "key-theme.txt"},
    }


def compare(forms: dict[str, dict], refs: list[str]) -> None:
    """Pixels whose class differs from the value rasters', per form, over every image."""
    from imagefit.maps.inputs.tileset import TileSet

    reference = TileSet(**forms["values"])
    truth = {ref: reference.read(ref)[1] for ref in refs}
    pixels = sum(t.size for t in truth.values())
    print(f"\n{'labels from':<12} {'images':>7} {'pixels':>12} {'differing':>10} {'seconds':>8}")
    for name, args in forms.items():
        started = time.perf_counter()
        tiles = TileSet(**args)
        differing = sum(int((tiles.read(ref)[1] != truth[ref]).sum()) for ref in refs)
        seconds = time.perf_counter() - started
        print(f"{name:<12} {len(tiles.refs()):7d} {pixels:12,d} {differing:10,d} {seconds:8.1f}")


def train_and_map(forms: dict[str, dict], model: str, work: Path, options: dict) -> None:
    """MODEL trained from each form of the labels, mapping tile 6 against the value rasters."""
    from imagefit.maps.mapping.many_tiles import map_tiles
    from imagefit.maps.training.map_train import train_map

    train, held_out = protocol()
    rows = []
    options = {**MODELS.get(model, {"model": model}), "balance": True, **options}
    for name, args in forms.items():
        tiles_args = {k: str(v) for k, v in args.items() if k != "ignore"}
        started = time.perf_counter()
        result = train_map(
            None, train, VALID_6, out=work / f"run-{name}", progress=False,
            ignore=args.get("ignore"), **tiles_args, **options,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        inputs = [work / "images" / f"{ref}.tif" for ref in held_out]
        out = work / f"maps-{name}"
        truth, ignore = (TILES / "masks", None) if name == "colours" else (TILES / "theme", 0)
        mapped = map_tiles(result.run_dir, inputs, out, truth=truth, ignore=ignore, progress=False)
        rows.append((name, mapped.metrics, seconds))
    print(f"\n{model} on tile 6, trained from each form of the labels (load {os.getloadavg()[0]:.1f}):")
    print(f"{'labels from':<12} {'pixel acc':>9} {'mIoU':>7} {'train s':>8}")
    for name, m, seconds in rows:
        print(f"{name:<12} {m['pixel_accuracy']:9.4f} {m['miou']:7.4f} {seconds:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the GeoTIFFs and the layer")
    parser.add_argument("--refs", nargs="*", default=None, help="images to compare (default: tiles 1-6, 8)")
    parser.add_argument("--train", default=None, help="also train this map-train model from each form")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--forms", default="values,colours,vector", help="the forms to train from")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    os.environ["HF_HUB_OFFLINE"] = "1"
    work = args.work or Path(tempfile.mkdtemp(prefix="imagefit-map-labels-"))
    refs = args.refs or refs_of(GROUPS)
    print(f"load {os.getloadavg()[0]:.2f}, {len(refs)} images, work folder {work}")
    forms = sources(work, refs)
    compare(forms, refs)
    if args.train:
        options = {k: v for k, v in (("epochs", args.epochs), ("steps", args.steps)) if v is not None}
        chosen = {name: forms[name] for name in args.forms.split(",")}
        train_and_map(chosen, args.train, work, options)


if __name__ == "__main__":
    main()
