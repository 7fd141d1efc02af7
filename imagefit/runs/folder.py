"""The run folder: the one place that names the files in it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from imagefit.errors import ModelError, OptionError

CONFIG, WEIGHTS, METRICS = "config.json", "model.safetensors", "metrics.json"
HISTORY, CURVES, REPORT = "history.csv", "curves.png", "report.html"
EVALUATION_DIR, EVALUATION = "evaluation", "evaluation.json"
CHECKPOINTS, LAST, BEST = "checkpoints", "last.safetensors", "best.safetensors"
FAMILIARITY = "familiarity.safetensors"  # training features and validation signals: unknown images
PROBE = "probe.safetensors"  # the linear-probe weights fine-tuning started from (WiSE-FT)
TEST_PREDICTIONS = "test_predictions.csv"
MAPS = "maps"  # map runs: the validation map after every epoch
ENGINES_FILE = "engines.json"  # the inference engines judged on the validation images, and the choice
JUDGE_IMAGES = "judge_images.json"  # the validation and calibration images that judgement needs
JUDGE_WORTH = 200  # validation images that tell 99.5 % agreement apart; a prediction job that pays


def judged_images(run_dir: str | Path) -> int:
    """How many validation images RUN/judge_images.json records for judging engines (0 without one)."""
    try:
        record = json.loads((Path(run_dir) / JUDGE_IMAGES).read_text(encoding="utf-8"))
        return len(record["valid"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


class RunFolder:
    """A run folder: its path and the path of every file a run writes into it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    config = property(lambda self: self.path / CONFIG)
    weights = property(lambda self: self.path / WEIGHTS)
    familiarity = property(lambda self: self.path / FAMILIARITY)
    metrics = property(lambda self: self.path / METRICS)
    history = property(lambda self: self.path / HISTORY)
    curves = property(lambda self: self.path / CURVES)
    report = property(lambda self: self.path / REPORT)
    evaluation = property(lambda self: self.path / EVALUATION_DIR)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    last = property(lambda self: self.path / CHECKPOINTS / LAST)
    best = property(lambda self: self.path / CHECKPOINTS / BEST)
    probe = property(lambda self: self.path / CHECKPOINTS / PROBE)
    test_predictions = property(lambda self: self.path / TEST_PREDICTIONS)
    maps = property(lambda self: self.path / MAPS)

    @classmethod
    def prepare(cls, out: str | Path | None, prefix: str, resume: bool = False) -> RunFolder:
        """The folder a run writes: `out`, or a new one under runs/; checked against resuming."""
        if out is None:
            if resume:
                raise OptionError("resuming needs the run folder to continue")
            return cls(new_run_dir(prefix=prefix))
        folder = cls(out)
        check_out_folder(out)
        if resume and not folder.last.is_file():
            raise ModelError(f"{folder.path} has no {CHECKPOINTS}/{LAST}: there is nothing to resume")
        if not resume and folder.last.is_file():
            raise OptionError(
                f"{folder.path} already holds a training run: resume it or choose another --out"
            )
        folder.path.mkdir(parents=True, exist_ok=True)
        return folder


def new_run_dir(base: str | Path = "runs", prefix: str = "run") -> Path:
    """A fresh folder under `base` named by prefix and time; never an existing one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = Path(base) / (f"{prefix}-{stamp}" + (f"-{n}" if n else ""))
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise ModelError(f"could not create a new run folder under {base}")


def check_out_folder(out: str | Path | None) -> None:
    """Fail before any work when the run folder asked for cannot be one (an existing file)."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise OptionError(f"--out {out} is a file: give a folder for the run (new or existing)")
