"""One training lifecycle for every strategy: data in, a run folder out.

`run_training` is the skeleton that every strategy (linear, scratch, finetune, and map-train)
goes through: check the options, read the data, build the model and its config, prepare the run
folder, fit (the strategy's own part), predict `DATA/test/`, save, report. A strategy is a
`Strategy` subclass that overrides the hooks it needs (those that train for epochs start from
`train.epochs.EpochStrategy`); `train` and `resume` (`train.entry`) are the public entry points.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from imagefit.errors import OptionError
from imagefit.inference.classifier import Classifier
from imagefit.runs import RunConfig, RunFolder, read_config, save_run, write_config
from imagefit.train.engine import distributed
from imagefit.train.options import TrainOptions

SPLITS = ("train", "valid", "test")


@dataclass
class TrainResult:
    """Where the run was written, what it measured, and the trained classifier."""

    run_dir: Path
    metrics: dict
    classifier: Classifier | None  # None on the worker ranks of a distributed run


class Strategy:
    """A way to train: the hooks that the lifecycle in `run_training` calls, in that order."""

    name: ClassVar[str]
    multilabel: ClassVar[bool] = False  # whether it trains on multi-label datasets

    def __init__(
        self,
        options: TrainOptions,
        seed: int = 0,
        workers: int | None = None,
        progress: bool = True,
        device: str | None = None,
        callbacks: Sequence = (),
    ):
        self.options, self.seed, self.workers, self.progress = options, seed, workers, progress
        self.device, self.callbacks = device, list(callbacks)

    def check(self) -> None:
        """Fail on what can be checked before any data is read (e.g. a model name)."""

    def summary(self, dataset) -> dict:
        """What the run trains on, in a few numbers (for trackers): classes and images per split."""
        counts = {f"{split}_images": len(getattr(dataset, split, None) or []) for split in SPLITS}
        return {"classes": len(dataset.classes), "layout": getattr(dataset, "layout", ""), **counts}

    def read_data(self, data):
        """The dataset, scanned and reported (counts, files to skip, imbalance, leakage)."""
        from imagefit.data.exclude import drop_excluded
        from imagefit.data.scan import report_dataset
        from imagefit.data.sources import read_dataset

        dataset = read_dataset(data, seed=self.seed, **self.options.data_options())
        dataset = drop_excluded(dataset, self.options.exclude)
        if dataset.multilabel and not self.multilabel:
            raise OptionError(f"the {self.name} strategy trains single-label data: use --strategy linear")
        report_dataset(dataset)
        return dataset

    def build(self, data: str | Path, dataset) -> tuple[object, RunConfig]:
        """The untrained model (seeded) and the run's config."""
        raise NotImplementedError

    def rebuild(self, config: RunConfig, dataset):
        """The model of a run being resumed (its weights come from the checkpoint); strategies
        without epochs do not override it and cannot be resumed."""
        raise NotImplementedError

    def fit(self, folder: RunFolder, dataset, model, config: RunConfig, resume: bool):
        """Train; (classifier, metrics) of the kept weights, or (None, {}) on a worker rank."""
        raise NotImplementedError

    def extract_options(self) -> dict:
        """How the trained classifier predicts the test and validation images after training."""
        return {"workers": self.workers, "progress": self.progress, "cache": False}

    def trust(self, classifier: Classifier, dataset, config: RunConfig) -> dict:
        """Calibrate the classifier on the validation images and fit its familiarity (which images are
        unlike the training ones); the calibration and moved thresholds go into `config`."""
        from imagefit.inference.trust import fit_trust
        from imagefit.train.extraction import label_matrix, labels_of

        if not getattr(dataset, "valid", None):
            return {}
        n, valid = len(dataset.classes), dataset.valid
        targets = (
            (lambda f: label_matrix(valid, f, n)) if dataset.multilabel else (lambda f: labels_of(valid, f))
        )
        opts = self.options
        found = fit_trust(
            classifier, [s.path for s in dataset.train], [s.path for s in valid], targets,
            self.extract_options(), opts.calibrate, opts.unknown_recall, self.seed,
        )  # fmt: skip
        if found.calibration is not None:
            config.calibration = found.calibration.to_dict()
        if classifier.multilabel:
            config.thresholds = [float(t) for t in classifier.thresholds]
        return found.metrics

    def predict_test(self, folder: RunFolder, classifier: Classifier, dataset) -> None:
        """Predictions for the unlabelled DATA/test/ images, if there are any."""
        if getattr(dataset, "test", None):
            preds = classifier.predict([s.path for s in dataset.test], **self.extract_options())
            preds.to_csv(folder.test_predictions)

    def report(self, folder: RunFolder, classifier: Classifier, dataset) -> None:
        """The validation split evaluated into RUN/evaluation/, RUN/report.html, and the run's graph
        cached so that `imagefit predict` of a few images starts without torch."""
        from imagefit.evaluate.training_report import training_report
        from imagefit.runs.quick import cache_graph, graph_path

        self.judge_engines(folder, classifier, dataset)
        training_report(folder.path, classifier, dataset, **self.extract_options())
        graph = graph_path(folder.path)
        if graph is not None and not graph.is_file():
            cache_graph(classifier, graph)

    def judge_engines(self, folder: RunFolder, classifier: Classifier, dataset) -> None:
        """Record the images that judge the run's engines; judge them now when the validation split
        is large enough to tell 99.5 % agreement (else on the first large prediction or serve)."""
        import torch

        from imagefit.runs.engines import judge_run, write_judge_images
        from imagefit.runs.folder import JUDGE_WORTH

        options = self.extract_options()
        if options.get("engine") != "auto" or not getattr(dataset, "valid", None):
            return  # a network trained from scratch, or an engine the user chose, runs as it is
        write_judge_images(folder.path, dataset, classifier.multilabel)
        if len(dataset.valid) >= JUDGE_WORTH and not torch.cuda.is_available():
            judge_run(folder.path, classifier, options.get("batch_size", 32))


def run_training(strategy: Strategy, data: str | Path, out: str | Path | None, resume: bool = False):
    """The lifecycle every strategy shares; returns a TrainResult."""
    started = time.perf_counter()
    strategy.check()
    dataset = strategy.read_data(data)
    if resume:
        config = read_config(out)
        model = strategy.rebuild(config, dataset)
    else:
        model, config = strategy.build(data, dataset)
    folder = RunFolder.prepare(out, strategy.name, resume)
    if not resume and distributed.is_main():
        write_config(folder.path, config)  # first, so that an interrupted run can be resumed
    begin = {"run_dir": folder.path, "strategy": strategy.name, "config": asdict(config), "resumed": resume}
    run_hooks(strategy.callbacks, "on_run_begin", {**begin, "data": strategy.summary(dataset)})
    end = {"run_dir": folder.path, "metrics": {}, "status": "FAILED"}
    try:
        result = _fit_and_save(strategy, folder, dataset, model, config, resume, started)
        end.update(metrics=result.metrics, status="FINISHED")
    except KeyboardInterrupt:
        end["status"] = "KILLED"
        raise
    finally:
        run_hooks(strategy.callbacks, "on_run_end", end)
    return result


def run_hooks(callbacks: Sequence, hook: str, logs: dict) -> None:
    """Call the run-wide `hook` of each callback (by `order`; those marked main-process-only on rank 0)."""
    for callback in sorted(callbacks, key=lambda cb: getattr(cb, "order", 0)):
        if getattr(callback, "main_process_only", False) and not distributed.is_main():
            continue
        method = getattr(callback, hook, None)
        if method is not None:
            method(None, logs)


def _fit_and_save(strategy: Strategy, folder: RunFolder, dataset, model, config, resume: bool, started):
    """Fit, then calibrate, predict the test images, save and report: the rest of `run_training`."""
    classifier, metrics = strategy.fit(folder, dataset, model, config, resume)
    if classifier is None:
        return TrainResult(folder.path, {}, None)  # a worker rank: rank 0 writes the run
    trust = strategy.trust(classifier, dataset, config)
    if trust:
        metrics["trust"] = trust
    strategy.predict_test(folder, classifier, dataset)
    metrics["seconds"] = {**metrics.get("seconds", {}), "total": round(time.perf_counter() - started, 3)}
    save_run(folder.path, classifier, config, metrics)
    strategy.report(folder, classifier, dataset)
    return TrainResult(folder.path, metrics, classifier)


def saved_options(options: TrainOptions, **resolved) -> dict:
    """The options as config.json keeps them, with values resolved from the data (sizes, channels)."""
    return {**asdict(options), **resolved}


def backbone_config(
    backbone, dataset, strategy: str, seed: int, data: str | Path, options: dict
) -> RunConfig:
    """The config of a run that trains on top of a registry backbone (linear, finetune)."""
    from imagefit.data.sources import data_source
    from imagefit.models.build import model_record

    return RunConfig(
        backbone=backbone.spec.name,
        arch=backbone.spec.arch,
        weights=backbone.weights,
        classes=dataset.classes,
        data_config=backbone.data_config,
        strategy=strategy,
        seed=seed,
        data=data_source(data),
        layout=dataset.layout,
        options=options,
        model=model_record(backbone.model, backbone.spec.arch),
    )
