"""imagefit.train: a dataset folder in, a run folder out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, log_loss

from imagefit.data.exclude import drop_excluded
from imagefit.data.folders import Dataset, Sample, discover_dataset
from imagefit.data.scan import report_dataset
from imagefit.errors import DataError, ModelError, OptionError
from imagefit.evaluate.training_report import training_report
from imagefit.features.extract import FeatureExtractor, Features
from imagefit.inference.classifier import Classifier
from imagefit.models.registry import DEFAULT_BACKBONE, create_backbone, get_spec
from imagefit.runs import backbone_config, check_out_folder, new_run_dir, read_config, save_run
from imagefit.train import distributed
from imagefit.train.class_weights import check_class_weights
from imagefit.train.linear import fit_linear_head, load_head

log = logging.getLogger(__name__)

STRATEGIES = ("linear", "finetune", "scratch")


@dataclass
class TrainResult:
    """Where the run was written, what it measured, and the trained classifier."""

    run_dir: Path
    metrics: dict
    classifier: Classifier


def train(
    data: str | Path,
    strategy: str = "linear",
    model: str = DEFAULT_BACKBONE,
    weights: str | Path = "auto",
    out: str | Path | None = None,
    valid_pct: float = 0.2,
    seed: int = 0,
    batch_size: int | None = None,
    workers: int | None = None,
    engine: str = "auto",
    cache: bool = True,
    progress: bool = True,
    image_size: int | None = None,
    scratch: dict | None = None,
    finetune: dict | None = None,
    class_weights: str | None = None,
    exclude: str | Path | None = None,
) -> TrainResult:
    """Train a classifier on the images under `data` and write a run folder.

    `scratch` holds the scratch strategy's options (arch, epochs, lr, optimizer, schedule, ...);
    `finetune` the finetune strategy's (stages, optimizer, schedule, weight_decay, augment, ...).
    `class_weights='auto'` weighs classes by n / (k * n_c) in training, for imbalanced folders.
    `exclude` is a file listing images to leave out (paths, or a CSV such as audit.csv).
    """
    class_weights = check_class_weights(class_weights)
    if strategy not in STRATEGIES:
        raise OptionError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    check_out_folder(out)
    if exclude is not None and strategy != "linear":
        raise OptionError("--exclude works with the linear strategy for now")

    if distributed.init():
        _check_world(data, valid_pct, seed)
        progress = progress and distributed.is_main()  # one set of bars and messages: rank 0's
        if not distributed.is_main():
            logging.getLogger("imagefit").setLevel(logging.WARNING)
    if strategy == "scratch":
        from imagefit.train.scratch import train_scratch

        return train_scratch(
            data,
            out=out,
            seed=seed,
            batch_size=batch_size,
            image_size=image_size,
            valid_pct=valid_pct,
            workers=workers,
            progress=progress,
            **{"class_weights": class_weights, **(scratch or {})},
        )
    if strategy == "finetune":
        from imagefit.train.finetune import train_finetune

        return train_finetune(
            data,
            model,
            weights,
            out,
            seed,
            workers,
            progress,
            image_size,
            batch_size=batch_size,
            valid_pct=valid_pct,
            **{"class_weights": class_weights, **(finetune or {})},
        )
    batch_size = 32 if batch_size is None else batch_size
    if batch_size < 1:
        raise OptionError(f"--batch-size must be at least 1, got {batch_size}")
    get_spec(model)  # a wrong name fails before the dataset is scanned
    started = time.perf_counter()
    dataset = drop_excluded(discover_dataset(data, valid_pct, seed), exclude)
    report_dataset(dataset)  # per-class counts, files to skip, imbalance, train/valid leakage
    torch.manual_seed(seed)  # an untrained backbone starts the same for the same seed
    backbone = create_backbone(model, weights, image_size=image_size)
    extractor = FeatureExtractor(
        backbone.model, backbone.data_config, engine, batch_size, workers, cache, progress
    )
    if distributed.active():
        _extract_shards(extractor, dataset, cache)
        if not distributed.is_main():
            return TrainResult(Path(out) if out is not None else Path(), {}, None)  # rank 0 fits
    train_f = _extract(extractor, dataset.train, "train")
    valid_f = _extract(extractor, dataset.valid, "valid")
    features_done = time.perf_counter()
    x, y = train_f.vectors, _labels(dataset.train, train_f)
    _check_classes(dataset, y)
    head = fit_linear_head(x, y, len(dataset.classes), seed, progress, balanced=class_weights == "auto")
    backbone.model.reset_classifier(len(dataset.classes))
    load_head(backbone.model, head)
    meta = {"backbone": backbone.spec.name, "arch": backbone.spec.arch, "weights": backbone.weights}
    classifier = Classifier(backbone.model, dataset.classes, backbone.data_config, meta)

    metrics = {
        "train": _scores(classifier, train_f, y),
        "valid": _scores(classifier, valid_f, _labels(dataset.valid, valid_f)),
        "head": {"C": head.C, "cv_log_loss": {str(k): v for k, v in head.cv_loss.items()}},
        "features": {
            "reused": train_f.reused + valid_f.reused,
            "computed": train_f.computed + valid_f.computed,
        },
        "skipped": [{"path": str(p), "reason": r} for p, r in train_f.errors + valid_f.errors],
    }
    run_dir = Path(out) if out is not None else new_run_dir(prefix=strategy)
    if dataset.test:
        preds = classifier.predictions_from(_extract(extractor, dataset.test, "test"))
        preds.to_csv(run_dir / "test_predictions.csv")
    metrics["seconds"] = {
        "features": round(features_done - started, 3),
        "total": round(time.perf_counter() - started, 3),
    }
    config = backbone_config(
        backbone,
        dataset,
        strategy,
        seed,
        data,
        {
            "valid_pct": valid_pct,
            "batch_size": batch_size,
            "engine": engine,
            "image_size": image_size,
            "class_weights": class_weights,
            "exclude": None if exclude is None else str(exclude),
        },
    )
    save_run(run_dir, classifier, config, metrics)
    training_report(
        run_dir,
        classifier,
        dataset,
        engine=engine,
        batch_size=batch_size,
        workers=workers,
        cache=cache,
        progress=progress,
    )
    return TrainResult(run_dir, metrics, classifier)


def resume(run_dir: str | Path, workers: int | None = None, progress: bool = True) -> TrainResult:
    """Continue a scratch or finetune run from its last checkpoint, with the options it started with."""
    config = read_config(run_dir)
    if config.strategy == "scratch":
        from imagefit.train.scratch import resume_scratch

        return resume_scratch(run_dir, progress=progress, workers=workers)
    if config.strategy == "finetune":
        from imagefit.train.finetune import resume_finetune

        return resume_finetune(run_dir, workers=workers, progress=progress)
    raise ModelError(
        f"{run_dir} is a {config.strategy} run, which has no epochs to resume: train it again "
        "(cached features make that fast)"
    )


def _check_world(data: str | Path, valid_pct: float, seed: int) -> None:
    """Every rank of a distributed run reads the same dataset, or all stop with the reason."""
    dataset = distributed.agree(lambda: discover_dataset(data, valid_pct, seed), "reading the dataset")
    seen = (dataset.classes, len(dataset.train), len(dataset.valid), len(dataset.test))
    distributed.same_everywhere(seen, "datasets (classes, train, valid, test images)")


def _extract_shards(extractor: FeatureExtractor, dataset: Dataset, cache: bool) -> None:
    """Each rank computes its share of the feature vectors into the shared cache; rank 0 reads them all."""
    if not cache:
        raise OptionError("distributed feature extraction shares vectors through the cache: drop --no-cache")
    embed_in_shares(extractor, [s.path for s in [*dataset.train, *dataset.valid, *dataset.test]])


def embed_in_shares(extractor: FeatureExtractor, paths: list, what: str = "features") -> None:
    """Each rank embeds its share of `paths` into the shared cache, then sees the others' shares."""
    mine = distributed.shard(paths)
    distributed.agree(lambda: extractor(mine, desc=what), what)
    if extractor.cache is not None:
        extractor.cache.reload()  # shards the other ranks wrote


def _extract(extractor: FeatureExtractor, samples: list[Sample], split: str) -> Features:
    features = extractor([s.path for s in samples], desc=f"{split} features")
    for path, reason in features.errors:
        log.warning("skipped %s", reason if str(path) in reason else f"{path}: {reason}")
    if features.errors:
        log.warning("%s: skipped %d unreadable image(s) of %d", split, len(features.errors), len(samples))
    return features


def _labels(samples: list[Sample], features: Features) -> np.ndarray:
    return np.array([s.label for s, ok in zip(samples, features.ok, strict=True) if ok], np.int64)


def _check_classes(dataset: Dataset, y: np.ndarray) -> None:
    present = np.bincount(y, minlength=len(dataset.classes))
    empty = [c for c, n in zip(dataset.classes, present, strict=True) if n == 0]
    if empty:
        raise DataError(f"no readable training images for class(es) {', '.join(empty)} in {dataset.root}")


def _scores(classifier: Classifier, features: Features, y: np.ndarray) -> dict:
    if len(y) == 0:
        return {"n": 0}
    probs = classifier.probabilities(features.vectors).astype(np.float64)
    probs /= probs.sum(1, keepdims=True)
    labels = list(range(len(classifier.classes)))
    return {
        "n": len(y),
        "loss": float(log_loss(y, probs, labels=labels)),
        "accuracy": float(accuracy_score(y, probs.argmax(1))),
    }
