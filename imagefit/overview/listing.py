"""`imagefit runs`: every run folder under a folder, one summary each, read from its files alone.

A run folder is a folder with a config.json (its checkpoints, evaluation and the trackers' stores
beside it are not). The summary is what tells runs apart: strategy, backbone, data, training
images, the validation scores of the kept model, epochs, training time, and when it was written.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from imagefit.errors import ModelError, OptionError
from imagefit.runs.folder import CONFIG, HISTORY, METRICS, WEIGHTS
from imagefit.runs.history import read_history

log = logging.getLogger(__name__)

NOT_RUNS = {
    "mlruns",
    "tensorboard",
    ".git",
    "__pycache__",
}  # trackers' stores; a run's own folders end the walk
HIGHER_FIRST = {"valid_accuracy", "valid_score", "train_images", "valid_images", "epochs", "classes", "date"}


@dataclass
class RunSummary:
    """One run folder in a few fields (JSON-ready); None where the run does not say."""

    run: str  # the folder, as found under the listed folder
    strategy: str
    backbone: str
    data: str
    classes: int
    train_images: int | None  # images (map runs: training tiles)
    valid_images: int | None  # images (map runs: validation patches)
    valid_accuracy: float | None  # of the kept model (map runs: the validation map's pixel accuracy)
    valid_loss: float | None
    valid_score: float | None  # multi-label: samples-F1; map runs: mIoU; else the accuracy again
    epochs: int | None  # None: a linear run (no epochs)
    best_epoch: int | None
    seconds: float | None  # the whole run, data to report
    date: str  # when metrics.json (or, unfinished, config.json) was last written
    status: str  # done, or unfinished (training, or stopped before its model was saved: its scores
    # are then the best epoch's so far, from history.csv)


def list_runs(root: str | os.PathLike = "runs", sort: str | None = None) -> list[RunSummary]:
    """The run folders under `root` (or `root` itself), oldest first or by `sort` (best first)."""
    root = Path(root)
    if not root.is_dir():
        raise OptionError(f"{root} is not a folder: give the folder that holds the run folders")
    found = []
    for path in run_folders(root):
        try:
            found.append(summarise(path, root))
        except ModelError as exc:  # one damaged folder does not hide the others
            log.warning("skipped %s", exc)
    return sort_runs(found, sort or "date", descending=bool(sort) and sort in HIGHER_FIRST)


def run_folders(root: Path) -> list[Path]:
    """`root` if it is a run folder, else every run folder below it (not inside another run)."""
    if (root / CONFIG).is_file():
        return [root]
    found = []
    for folder, subfolders, files in os.walk(root):
        if CONFIG in files:
            found.append(Path(folder))
            subfolders.clear()
        else:
            subfolders[:] = sorted(d for d in subfolders if d not in NOT_RUNS)
    return sorted(found)


def sort_runs(runs: list[RunSummary], key: str, descending: bool = False) -> list[RunSummary]:
    """`runs` ordered by field `key` (runs without a value last)."""
    names = [f.name for f in fields(RunSummary)]
    if key not in names:
        raise OptionError(f"--sort {key}: sort by one of {', '.join(names)}")
    known = [r for r in runs if getattr(r, key) is not None]
    unknown = [r for r in runs if getattr(r, key) is None]
    return sorted(known, key=lambda r: getattr(r, key), reverse=descending) + unknown


def summarise(path: Path, root: Path) -> RunSummary:
    """The summary of the run folder at `path` (named relative to `root`)."""
    config = _json(path / CONFIG, required=True)
    metrics = _json(path / METRICS)
    options = config.get("options") or {}
    valid = metrics.get("valid") or {}
    accuracy, score = valid.get("accuracy"), valid.get("samples_f1", valid.get("accuracy"))
    train_n, valid_n = (metrics.get("train") or {}).get("n"), valid.get("n")
    if config.get("strategy") == "map":
        vmap = metrics.get("valid_map") or {}
        accuracy, score = vmap.get("pixel_accuracy"), vmap.get("miou")
        train_n = len((options.get("map") or {}).get("train") or []) or None
        valid_n = (metrics.get("valid_patches") or {}).get("n")
    epochs, loss = metrics.get("epochs"), valid.get("loss", (metrics.get("valid_patches") or {}).get("loss"))
    if not metrics:  # unfinished: the best epoch so far, from its history
        accuracy, loss, epochs = _best_so_far(path / HISTORY)
        score = accuracy
    written = path / METRICS if (path / METRICS).is_file() else path / CONFIG
    return RunSummary(
        run=str(path.relative_to(root)) if path != root else str(path),
        strategy=str(config.get("strategy", "")),
        backbone=str(config.get("backbone", "")),
        data=str(config.get("data", "")),
        classes=len(config.get("classes") or []),
        train_images=train_n,
        valid_images=valid_n,
        valid_accuracy=accuracy,
        valid_loss=loss,
        valid_score=score,
        epochs=epochs,
        best_epoch=(metrics.get("best") or {}).get("epoch"),
        seconds=(metrics.get("seconds") or {}).get("total"),
        date=time.strftime("%Y-%m-%d %H:%M", time.localtime(written.stat().st_mtime)),
        status="done" if (path / WEIGHTS).is_file() and metrics else "unfinished",
    )


def as_rows(runs: list[RunSummary]) -> list[dict]:
    """The summaries as JSON-ready dicts."""
    return [asdict(r) for r in runs]


def _best_so_far(history: Path) -> tuple[float | None, float | None, int | None]:
    """(highest val_acc, lowest val_loss, epochs) of an unfinished run's history; Nones without one."""
    try:
        rows = read_history(history) if history.is_file() else []
    except (ValueError, KeyError):
        rows = []
    accs = [r["val_acc"] for r in rows if r.get("val_acc") is not None]
    losses = [r["val_loss"] for r in rows if r.get("val_loss") is not None]
    return (max(accs) if accs else None), (min(losses) if losses else None), (len(rows) or None)


def _json(path: Path, required: bool = False) -> dict:
    if not path.is_file():
        if required:
            raise ModelError(f"{path.parent} is not a run folder (no {CONFIG})")
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"{path} is not valid JSON ({exc}): train the run again or restore the file"
        ) from exc
    return found if isinstance(found, dict) else {}
