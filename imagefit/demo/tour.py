"""The demo's steps on the images shipped in `data/`: a classifier of aerial photos and a theme map.

Every step is the library function a command runs, so each printed result has a command that
makes it again (`DemoResult.next_commands`). Offline: the photos, the aerial image and the
EfficientNet-Lite0 weights are all installed with the package.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from imagefit.audit import AuditResult, audit
from imagefit.clock import StageClock
from imagefit.errors import ImagefitError, OptionError
from imagefit.inference import Predictions
from imagefit.maps.inputs.key import read_key
from imagefit.maps.inputs.labels import read_labels
from imagefit.maps.inputs.rasters import open_raster
from imagefit.maps.mapping.tile import MapResult, map_tile
from imagefit.maps.outputs.metrics import map_metrics
from imagefit.maps.training.map_train import train_map
from imagefit.models.defaults import DEFAULT_BACKBONE
from imagefit.runs import RunFolder, load, read_config
from imagefit.search.embed import features
from imagefit.search.similar import similar
from imagefit.train import TrainResult, train

REF = "T2P07"  # the aerial image: tile 2, image 7 of the Dubai set, 509 x 544 pixels
TRAIN_HALF, HELD_OUT = f"{REF}-east", f"{REF}-west"
# A short decoder run: about a minute on 2 CPU cores (map-train's decoder defaults take ~20 minutes)
MAP_OPTIONS = {"model": "fpn", "epochs": 3, "steps": 20, "batch_size": 4, "crop": 192}
SHOWN = ("beach", "harbor", "airplane")  # classes whose first validation photo is queried and predicted
Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo wrote under `out`, and the figures it printed."""

    out: Path
    run: TrainResult  # the linear classifier of the photos (OUT/run)
    audit: AuditResult  # OUT/audit
    similar: list[dict]  # each shown photo's nearest training photos
    predictions: Predictions  # the shown photos predicted by OUT/run
    map_run: TrainResult  # the decoder trained on the east half of the aerial image (OUT/map-run)
    map: MapResult  # the whole image mapped (OUT/map/)
    map_accuracy: dict[str, float]  # pixel accuracy: "held_out" (west half), "whole" image
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """The linear classifier's validation accuracy."""
        return float(self.run.metrics["valid"]["accuracy"])

    @property
    def map_file(self) -> Path:
        return self.out / "map" / f"{REF}-map.tif"

    def next_commands(self) -> list[str]:
        """Commands to try next on what the demo wrote."""
        out, photo = self.out, self.predictions.paths[0]
        tiles = out / "aerial"
        return [
            f"imagefit serve {out / 'run'}   # http://127.0.0.1:8000/ : drop photos, see their classes",
            f"imagefit predict {out / 'run'} {photo}",
            f"imagefit train {out / 'photos'} --strategy finetune --out {out / 'finetune'}",
            f"imagefit similar {out / 'photos.safetensors'} {photo} -k 8 --out similar.png",
            f"imagefit map {out / 'map-run'} {tiles / '3band' / (REF + '.jpg')} --png",
            f"imagefit map-train {tiles} --train {TRAIN_HALF} --valid {HELD_OUT} --model fpn  # longer",
            "imagefit train YOUR_FOLDER   # one subfolder of images per class",
        ]


def demo(out: str | Path = "demo", progress: bool = True, say: Say | None = print) -> DemoResult:
    """Copy the shipped photos and aerial image under OUT, then: a linear classifier of the photos
    (OUT/run, its report), their audit (OUT/audit), similar photos (OUT/similar.png), predictions of
    a few photos, a decoder trained on the east half of the aerial image (OUT/map-run), and the whole
    image mapped (OUT/map/), its pixel accuracy on the held-out west half. `say` prints each result."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out} is a file: give a folder for the demo (new or existing)")
    say = say or (lambda line: None)
    clock = StageClock()
    if clear_map_run(out / "map-run"):
        say(f"replacing the map run of an earlier demo in {out / 'map-run'}")
    photos, tiles = copy_data(out)
    say(f"photos: {photos} ({_describe(photos)}; UC Merced Land Use, USGS, public domain)")

    run = train(photos, out=out / "run", progress=progress)
    clock.lap("train")
    valid = run.metrics["valid"]
    say(
        f"1. linear classifier on {DEFAULT_BACKBONE} features ({clock.seconds['train']:.0f} s): validation "
        f"accuracy {valid['accuracy']:.4f} -> {out / 'run' / 'report.html'}"
    )

    checked = audit(photos, out / "audit", progress=progress)
    clock.lap("audit")
    counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in checked.summary["counts"].items())
    say(f"2. audit of the photos: {counts or 'nothing to look at'} -> {out / 'audit' / 'audit.html'}")

    shown = [sorted((photos / "valid" / name).glob("*.jpg"))[0] for name in SHOWN]
    index = out / "photos.safetensors"
    features(DEFAULT_BACKBONE, photos / "train", index, progress=progress)
    found = similar(index, shown, k=4, metric="cosine", out=out / "similar.png")
    clock.lap("similar")
    say(f"3. similar images, the 4 training photos nearest each -> {out / 'similar.png'}")
    for item in found:
        near = ", ".join(Path(n["path"]).parent.name for n in item["neighbours"])
        say(f"   {_short(item['query'], out)}: {near}")

    predictions = load(out / "run").predict(shown, progress=progress)
    clock.lap("predict")
    say(f"4. predictions of {out / 'run'}:")
    rows = zip(predictions.paths, predictions.labels, predictions.probabilities, strict=True)
    for path, label, row in rows:
        say(f"   {_short(path, out)}: {label} {row.max():.2f}")

    map_run = train_map(
        tiles, train=[TRAIN_HALF], valid=HELD_OUT, out=out / "map-run", progress=progress, **MAP_OPTIONS
    )
    clock.lap("map-train")
    steps = MAP_OPTIONS["epochs"] * MAP_OPTIONS["steps"]
    say(
        f"5. {MAP_OPTIONS['model'].upper()} decoder trained {steps} steps on the east half of aerial image "
        f"{REF} ({clock.seconds['map-train']:.0f} s; Dubai, CC0) -> {out / 'map-run'}"
    )

    image, truth = tiles / "3band" / f"{REF}.jpg", tiles / "theme" / f"{REF}-theme.png"
    mapped = map_tile(out / "map-run", image, out=out / "map" / f"{REF}-map.tif", png=True, truth=truth)
    clock.lap("map")
    accuracy = held_out_accuracy(mapped, truth, tiles / "key-theme.txt")
    say(
        f"6. map of the whole image -> {out / 'map' / (REF + '-map.tif')} (GeoTIFF with the classes' "
        f"colour table), {out / 'map' / (REF + '-map.png')}"
    )
    say(
        f"   pixel accuracy {accuracy['held_out']:.4f} on the west half (held out: never trained on), "
        f"{accuracy['whole']:.4f} on the whole image"
    )
    clock.lap("total", since_start=True)
    return DemoResult(out, run, checked, found, predictions, map_run, mapped, accuracy, clock.seconds)


def copy_data(out: Path) -> tuple[Path, Path]:
    """The shipped photos as OUT/photos/{train,valid}/<class>/, and the aerial image in the seeds'
    layout as OUT/aerial/ with its east and west halves beside it (lossless PNGs) as their own refs."""
    data = resources.files("imagefit.demo") / "data"
    photos, tiles = out / "photos", out / "aerial"
    with resources.as_file(data) as source:
        shutil.copytree(source / "photos", photos, dirs_exist_ok=True)
        shutil.copytree(source / "aerial", tiles, dirs_exist_ok=True)
    with Image.open(tiles / "3band" / f"{REF}.jpg") as img:
        pixels = np.asarray(img.convert("RGB"))
    with Image.open(tiles / "theme" / f"{REF}-theme.png") as img:
        labels = np.asarray(img)
    half = labels.shape[1] // 2
    for ref, cols in ((HELD_OUT, slice(0, half)), (TRAIN_HALF, slice(half, None))):
        Image.fromarray(np.ascontiguousarray(pixels[:, cols])).save(tiles / "3band" / f"{ref}.png")
        Image.fromarray(np.ascontiguousarray(labels[:, cols])).save(tiles / "theme" / f"{ref}-theme.png")
    return photos, tiles


def clear_map_run(folder: Path) -> bool:
    """Remove a map run that an earlier demo left in `folder` (a map run refuses to overwrite one);
    any other run there is refused before any work. Returns whether one was removed."""
    if not RunFolder(folder).last.is_file():
        return False
    try:
        maps = read_config(folder).options["map"]
        ours = maps["train"] == [TRAIN_HALF] and maps["valid"] == HELD_OUT
    except (ImagefitError, KeyError, TypeError):
        ours = False
    if not ours:
        raise OptionError(f"{folder} holds a training run that is not the demo's: choose another --out")
    shutil.rmtree(folder)
    return True


def held_out_accuracy(mapped: MapResult, truth: Path, key: Path) -> dict[str, float]:
    """Pixel accuracy of the map GeoTIFF written, read back, on the west half (the held-out tile)
    and on the whole image."""
    theme_key = read_key(key)
    with open_raster(truth) as ds:
        height, width = ds.height, ds.width
    west = (0, 0, height, width // 2)  # row, col, height, width
    predicted = read_labels(mapped.files[0], theme_key, west)
    labels = read_labels(truth, theme_key, west)
    names = list(theme_key.names)
    return {
        "held_out": float(map_metrics(predicted, labels, names)["pixel_accuracy"]),
        "whole": float(mapped.metrics["pixel_accuracy"]),
    }


def _describe(photos: Path) -> str:
    counts = {split: len(list((photos / split).rglob("*.jpg"))) for split in ("train", "valid")}
    classes = sorted(p.name for p in (photos / "train").iterdir() if p.is_dir())
    return f"{len(classes)} classes: {', '.join(classes)}; {counts['train']} train, {counts['valid']} valid"


def _short(path: str | Path, out: Path) -> str:
    """A path under OUT as OUT/..., relative when it is under the current folder."""
    path = Path(path)
    try:
        return str(out / path.resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path)
