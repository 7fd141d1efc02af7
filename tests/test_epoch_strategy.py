"""A new strategy that trains for epochs needs only its model and its hooks: the base does the rest."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass

import pytest
from timm.data import resolve_model_data_config

import imagefit
from imagefit.models.build import build_model, model_record
from imagefit.models.small_cnn import SmallCNN
from imagefit.runs import RunConfig, read_config, read_history
from imagefit.train.engine.stages import Stage
from imagefit.train.epochs import EpochStrategy
from imagefit.train.lifecycle import run_training
from imagefit.train.options import EpochOptions
from tests.conftest import COLOURS, make_folder, write_image

CLASSES = ["blue", "green", "red"]


# --- the fourth strategy: its options, its model, nothing else ----------------------------------


@dataclass
class ToyOptions(EpochOptions):
    """One stage of every parameter at a fixed rate."""

    epochs: int = 1

    def stage_plan(self) -> list[Stage]:
        return [Stage("toy", self.epochs, 0.01)]


class ToyStrategy(EpochStrategy):
    """A tiny CNN on 16-pixel images."""

    name = "toy"

    def build(self, data, dataset):
        model = SmallCNN("conv4@3-pool2-dense8", 3, len(dataset.classes), 16)
        config = RunConfig(
            backbone=model.arch, arch=model.spec, weights="none", classes=dataset.classes,
            data_config=dict(resolve_model_data_config(model)), strategy=self.name, seed=self.seed,
            data=str(data), layout=dataset.layout, options=asdict(self.options),
            model=model_record(model, model.spec),
        )  # fmt: skip
        return model, config

    def rebuild_model(self, config):
        return build_model(config.model_record(), len(config.classes))


# -------------------------------------------------------------------------------------------------


def test_a_toy_strategy_trains_one_epoch_through_the_real_lifecycle(tmp_path) -> None:
    data = make_folder(tmp_path / "data", classes=("blue", "red", "green"), n_train=6, n_valid=3)
    unlabelled = [write_image(data / "test" / f"t{i}.jpg", COLOURS["green"], 100 + i) for i in range(2)]
    strategy = ToyStrategy(ToyOptions(batch_size=5), seed=0, workers=0, progress=False)
    result = run_training(strategy, data, tmp_path / "run")

    run = result.run_dir
    config = read_config(run)
    assert (config.strategy, config.classes, config.options["epochs"]) == ("toy", CLASSES, 1)
    history = read_history(run / "history.csv")
    assert [(row["epoch"], row["stage"]) for row in history] == [(1, "toy")]
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["best"]["epoch"]) == (1, 1)
    assert (metrics["train"]["n"], metrics["valid"]["n"]) == (18, 9)
    with (run / "test_predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == [p.name for p in unlabelled]
    assert [c for c in rows[0] if c.startswith("p_")] == [f"p_{c}" for c in CLASSES]

    predictions = imagefit.load(run).predict(unlabelled, engine="torch", progress=False)
    assert predictions.probabilities.shape == (2, 3)
    assert predictions.probabilities.sum(1) == pytest.approx([1.0, 1.0], abs=1e-5)
