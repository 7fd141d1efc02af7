"""The seed's DisplayMap callback: the validation region's theme map drawn after every epoch."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from imagefit.maps.inputs.tileset import Roi, TileSet
from imagefit.maps.mapping.region import map_region
from imagefit.maps.mapping.window_engines import make_engine
from imagefit.maps.outputs.metrics import map_metrics
from imagefit.maps.outputs.pictures import save_map_png
from imagefit.train.callbacks.base import Callback

log = logging.getLogger(__name__)


class DisplayMap(Callback):
    """Draws `truth.png` of a tile's ROI before training, then `epoch_NN.png` of the model's map after each.

    Each epoch's pixel accuracy and mIoU on the ROI are kept in `scores` (and logged).
    """

    order = -1  # before the progress bar (order 0) closes the epoch's line, as map-train always drew it

    def __init__(self, tiles: TileSet, ref: str, roi: Roi, patch: int, data_config: dict, folder: str | Path):
        self.tiles, self.ref, self.roi, self.patch = tiles, ref, roi, patch
        self.mean, self.std = data_config["mean"], data_config["std"]
        self.folder = Path(folder)
        self.scores: list[dict] = []
        self.truth = None

    def on_train_begin(self, trainer, logs: dict) -> None:
        _, self.truth = self.tiles.read(self.ref, self.roi)
        title = f"{self.ref} {self._roi_text()}: ground truth"
        save_map_png(self.truth, self.tiles.classes, self.folder / "truth.png", title)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        scores = self.evaluate(trainer.model)
        scores["epoch"] = logs["epoch"]
        self.scores.append(scores)
        title = f"{self.ref} {self._roi_text()}: epoch {logs['epoch']}, mIoU {scores['miou']:.3f}"
        save_map_png(self.last_map, self.tiles.classes, self.folder / f"epoch_{logs['epoch']:02d}.png", title)
        log.info("validation map: pixel accuracy %.4f  mIoU %.4f", scores["pixel_accuracy"], scores["miou"])

    def evaluate(self, model) -> dict:
        """Map the ROI with a CPU copy of `model` and score it against the labels."""
        was_training = model.training
        net = copy.deepcopy(model).cpu().eval()
        model.train(was_training)
        engine = make_engine(net, self.patch, engine="torch")
        image, bands = self.tiles.tile(self.ref).image, self.tiles.band_selection
        self.last_map = map_region(
            engine, image, self.patch, self.mean, self.std, self.roi, bands=bands
        ).index
        if self.truth is None:
            _, self.truth = self.tiles.read(self.ref, self.roi)
        scores = map_metrics(self.last_map, self.truth, self.tiles.classes)
        return {k: scores[k] for k in ("pixel_accuracy", "miou", "iou")}

    def _roi_text(self) -> str:
        (x0, y0), (x1, y1) = self.roi
        return f"({x0},{y0})-({x1},{y1})"
