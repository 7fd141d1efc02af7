"""`evaluate(run, data)`: predict the labelled images of a folder and write metrics and galleries."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json, write_text
from imagefit.data.folders import discover_dataset
from imagefit.data.images import list_images
from imagefit.data.sources import read_dataset
from imagefit.data.tables import is_table
from imagefit.errors import DataError, OptionError
from imagefit.evaluate.galleries import SELECTORS, confusion_figure, save_gallery, titles_for
from imagefit.evaluate.metrics import confusion_text, evaluation_metrics
from imagefit.evaluate.trust_evaluation import trust_evaluation, unknown_evaluation, unknown_images
from imagefit.inference.calibration import Calibration
from imagefit.inference.predictions import Predictions
from imagefit.runs import load, read_config
from imagefit.runs.folder import CONFIG, EVALUATION, EVALUATION_DIR, REPORT

log = logging.getLogger(__name__)

SPLITS = ("valid", "train")


def evaluate(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike | None = None,
    split: str = "valid",
    n_images: int = 8,
    seed: int = 0,
    unknown: str | os.PathLike | None = None,
    **predict_options,
) -> dict:
    """Evaluate the classifier in `run_dir` on the labelled images of `data`; write into `out`.

    `data` is a dataset folder with train/ (its `split` is used, re-split as in training when it
    has no valid/ folder), the folder the run was trained on in any layout (its `split`, as in
    training), or another folder of class folders (all its images). `unknown` is a folder of
    images of no training class: how well the run's familiarity tells them from the evaluated
    ones. Predictions go through the feature cache, so evaluating unchanged files again does no
    forward pass. Writes evaluation.json, predictions.csv, the figures and a self-contained report.html.
    """
    run_dir = Path(run_dir)
    classifier = load(run_dir)
    multilabel = getattr(classifier, "multilabel", False)
    strangers = unknown_images(classifier, unknown, run_dir) if unknown is not None else None
    labelled = labelled_sets(data, classifier.classes, split, run_dir, multilabel)
    preds = classifier.predict(list(labelled), **predict_options)
    if not preds.paths:
        raise DataError(f"none of the {len(labelled)} images in {data} could be read")
    out = Path(out) if out is not None else _default_out(run_dir)
    record = {"run": str(run_dir), "data": str(data), "split": split}
    if strangers is not None:
        judged = classifier.predict(strangers, **predict_options)
        threshold = classifier.familiarity.threshold
        record.update(unknown_evaluation(preds, judged, threshold, unknown, out))
    if multilabel:
        from imagefit.evaluate.multilabel_evaluation import write_multilabel_evaluation

        y = np.zeros((len(preds.paths), len(classifier.classes)), np.int64)
        for row, path in enumerate(preds.paths):
            y[row, list(labelled[str(path)])] = 1
        metrics = write_multilabel_evaluation(preds, y, out, n_images, **record)
    else:
        y_true = np.array([labelled[str(p)][0] for p in preds.paths], dtype=int)
        metrics = write_evaluation(preds, y_true, out, n_images, seed, _temperature(run_dir), **record)
    from imagefit.evaluate.report import write_report

    write_report(run_dir, metrics, out / REPORT)
    return metrics


def write_evaluation(
    preds: Predictions,
    y_true: np.ndarray,
    out: str | os.PathLike,
    n_images: int = 8,
    seed: int = 0,
    temperature: float | None = None,
    **record,
) -> dict:
    """Write predictions.csv, the confusion matrix, the galleries, the trust figures and
    evaluation.json into `out`.

    `temperature` is the one folded into the run's weights (None: uncalibrated); `record` (run,
    data, split, ...) is stored in evaluation.json with the metrics.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    preds.to_csv(out / "predictions.csv")
    metrics = evaluation_metrics(y_true, preds.probabilities, preds.classes)
    write_text(out / "confusion.txt", confusion_text(metrics["confusion_matrix"], preds.classes) + "\n")
    confusion_figure(
        np.array(metrics["confusion_matrix"]),
        np.array(metrics["confusion_matrix_normalised"]),
        preds.classes,
        out / "confusion.png",
    )
    metrics.update(
        record,
        out=str(out),
        skipped=[{"path": str(p), "reason": r} for p, r in preds.errors],
        confusion_figure="confusion.png",
        confusion_table="confusion.txt",
        predictions="predictions.csv",
        galleries=_galleries(preds, y_true, out, n_images, seed),
        **trust_evaluation(preds, y_true, out, temperature),
    )
    write_json(out / EVALUATION, metrics)
    return metrics


def labelled_images(
    data: str | os.PathLike, classes: list[str], split: str = "valid", run_dir: Path | None = None
) -> dict[str, int]:
    """Image path -> index into `classes`, for the images of `data` that are evaluated."""
    return {path: labels[0] for path, labels in labelled_sets(data, classes, split, run_dir).items()}


def labelled_sets(
    data, classes: list[str], split: str = "valid", run_dir: Path | None = None, multilabel: bool = False
) -> dict[str, tuple[int, ...]]:
    """Image path -> indices into `classes` of its labels (one, unless `multilabel`)."""
    if split not in SPLITS:
        raise OptionError(f"--split must be one of {', '.join(SPLITS)}, got {split}")
    if is_table(data):
        named = _table_images(data, split, run_dir, multilabel)
    else:
        named = [(path, (name,)) for path, name in _folder_images(Path(data), split, run_dir)]
    unknown = sorted({name for _, names in named for name in names} - set(classes))
    if unknown:
        raise DataError(
            f"{data} has classes the model does not know: {', '.join(unknown)} "
            f"(the model's classes: {', '.join(classes)})"
        )
    if not named:
        raise DataError(f"{data} holds no labelled images to evaluate")
    index = {c: i for i, c in enumerate(classes)}
    return {str(path): tuple(index[name] for name in names) for path, names in named}


def _table_images(data, split: str, run_dir: Path | None, multilabel: bool) -> list[tuple[Path, tuple]]:
    """(image, label names) of a label table: the run's own table gives its split, another all its rows."""
    saved = read_config(run_dir).options if run_dir is not None and (run_dir / CONFIG).is_file() else {}
    own = _trained_on(run_dir) == Path(data).resolve()
    names = ["path_col", "label_col", "label_delim"] + (["images", "valid", "valid_pct"] if own else [])
    options = {k: saved[k] for k in names if k in saved}
    task = "multilabel" if multilabel else "single"
    dataset = read_dataset(data, seed=_split_of(run_dir)[1], task=task, **options)
    samples = getattr(dataset, split) if own else dataset.train + dataset.valid
    return [(s.path, tuple(dataset.classes[i] for i in s.label_set)) for s in samples]


def _folder_images(data: Path, split: str, run_dir: Path | None) -> list[tuple[Path, str]]:
    """(image, class) of a dataset folder: its split as in training, or every image of its classes."""
    if not data.is_dir():
        raise DataError(f"{data} is not a folder: expected DATA/<class>/ or DATA/train/ + DATA/valid/")
    trained_on = _trained_on(run_dir)
    if trained_on == data.resolve() or any(p.is_dir() and p.name.lower() == "train" for p in data.iterdir()):
        valid_pct, seed = _split_of(run_dir)  # the run's own data: the same split as in training
        dataset = discover_dataset(data, valid_pct, seed)
        named = [(s.path, dataset.classes[s.label]) for s in getattr(dataset, split)]
    else:
        named = [(p, d.name) for d in _class_folders(data) for p in list_images(d)]
    return named


def _class_folders(data: Path) -> list[Path]:
    folders = sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{data} has no class folders: expected DATA/<class>/ or DATA/train/ + DATA/valid/")
    return folders


def _split_of(run_dir: Path | None) -> tuple[float, int]:
    """The valid_pct and seed the run was trained with, so a re-split picks the same images."""
    if run_dir is None or not (run_dir / CONFIG).is_file():
        return 0.2, 0
    config = read_config(run_dir)
    return float(config.options.get("valid_pct", 0.2)), int(config.seed)


def _trained_on(run_dir: Path | None) -> Path | None:
    """The data folder the run was trained on, if it says."""
    if run_dir is None or not (run_dir / CONFIG).is_file():
        return None
    data = read_config(run_dir).data
    return Path(data).resolve() if data else None


def _temperature(run_dir: Path) -> float | None:
    """The temperature folded into a single-label run's weights; None when it has none."""
    if not (run_dir / CONFIG).is_file():
        return None
    calibration = Calibration.from_dict(read_config(run_dir).calibration)
    return None if calibration is None or calibration.scales is not None else calibration.temperature


def _default_out(run_dir: Path) -> Path:
    return (run_dir if run_dir.is_dir() else run_dir.parent) / EVALUATION_DIR


def _galleries(preds, y_true: np.ndarray, out: Path, n_images: int, seed: int) -> dict:
    """Select and draw the five galleries; an empty one is recorded with no file."""
    result = {}
    for name, select in SELECTORS.items():
        per_class = name.startswith("most_confident")
        rows = select(
            y_true, preds.probabilities, n=max(1, n_images // 2) if per_class else n_images, seed=seed
        )
        paths = [str(preds.paths[i]) for i in rows]
        entry = {"file": None, "images": paths}
        if rows:
            titles = titles_for(rows, y_true, preds.probabilities, preds.classes)
            save_gallery(paths, titles, out / f"gallery_{name}.png")
            entry["file"] = f"gallery_{name}.png"
        else:
            entry["note"] = "no images to show"
            log.info("gallery %s: no images", name)
        result[name] = entry
    return result
