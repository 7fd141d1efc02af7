"""A run's engines: judged once on its validation images, recorded in RUN/engines.json, then chosen from.

Training writes RUN/judge_images.json: the validation images with their labels, and the training
images that calibrate the int8 graph (CALIBRATION_IMAGES, spread evenly). The judgement
(`imagefit.inference.judge`) runs at the end of training when the validation split is large enough
to tell 99.5 % agreement apart, or else on the first large prediction or `serve`, and is kept with
the fingerprint of the machine it was timed on; another machine judges again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json
from imagefit.data.digests import file_digest
from imagefit.data.loader import iterate_batches
from imagefit.errors import ImagefitError, OptionError, WriteError
from imagefit.features.autotune import machine_fingerprint
from imagefit.features.engines import unavailable
from imagefit.features.quantize import CALIBRATION_IMAGES, Calibration, calibration_digest
from imagefit.inference.judge import judge_engines
from imagefit.models.defaults import ENGINES
from imagefit.runs.folder import ENGINES_FILE, JUDGE_IMAGES, JUDGE_WORTH

log = logging.getLogger(__name__)


def write_judge_images(run_dir: str | Path, dataset, multilabel: bool) -> None:
    """Record the images a later judgement needs: the validation split and the calibration set."""
    train = sorted(s.path for s in dataset.train)
    step = max(1, len(train) // CALIBRATION_IMAGES)
    valid = [{"path": str(s.path), "labels": list(s.label_set)} for s in dataset.valid]
    record = {
        "multilabel": multilabel,
        "valid": valid,
        "calibration": [str(p) for p in train[::step]][:CALIBRATION_IMAGES],
    }
    try:
        write_json(Path(run_dir) / JUDGE_IMAGES, record)
    except WriteError as exc:
        log.warning("%s: the run's engines cannot be judged later", exc)


def read_engines(run_dir: str | Path) -> dict | None:
    """The run's judgement on this machine, if it was made here."""
    try:
        record = json.loads((Path(run_dir) / ENGINES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("machine") == machine_fingerprint() else None


def judge_run(
    run_dir: str | Path, classifier, batch_size: int = 32, minimum: int = JUDGE_WORTH
) -> dict | None:
    """Judge the run's engines on its validation images and write RUN/engines.json; None when the
    images are gone (a warning says so) or fewer than `minimum`."""
    run_dir = Path(run_dir)
    inputs = judge_inputs(run_dir, classifier, minimum)
    if inputs is None:
        return None
    record = judge_engines(classifier, *inputs, batch_size=batch_size)
    record.update(machine=machine_fingerprint(), calibration=inputs[2].digest if inputs[2] else None)
    try:
        write_json(run_dir / ENGINES_FILE, record)
    except WriteError as exc:
        log.warning("%s: the engines are judged again next time", exc)
    return record


def judge_inputs(
    run_dir: Path, classifier, minimum: int = JUDGE_WORTH
) -> tuple[list[Path], np.ndarray, Calibration | None] | None:
    """(validation images, their labels, calibration set) recorded by training; None when gone or
    fewer than `minimum` (too few to tell 99.5 % agreement apart)."""
    try:
        images = json.loads((Path(run_dir) / JUDGE_IMAGES).read_text(encoding="utf-8"))
        paths = [Path(v["path"]) for v in images["valid"]]
        missing = [p for p in paths if not p.is_file()]
    except (OSError, ValueError, KeyError, TypeError):
        log.info("%s has no readable %s: its engines are not judged (fp32 is used)", run_dir, JUDGE_IMAGES)
        return None
    if len(paths) < max(minimum, 2):
        log.info(
            "%s has %d validation images, too few to tell 99.5 %% agreement apart (%d needed):"
            " its engines are not judged (fp32 is used)",
            run_dir,
            len(paths),
            minimum,
        )
        return None
    if missing:
        log.warning("the validation images of %s are not all there (%s): fp32 is used", run_dir, missing[:1])
        return None
    truth = _truth(images, len(classifier.classes))
    return paths, truth, run_calibration([Path(p) for p in images["calibration"]], classifier.data_config)


def _truth(images: dict, n_classes: int) -> np.ndarray:
    labels = [v["labels"] for v in images["valid"]]
    if not images.get("multilabel"):
        return np.array([row[0] if row else -1 for row in labels])
    truth = np.zeros((len(labels), n_classes), np.int8)
    for i, row in enumerate(labels):
        truth[i, row] = 1
    return truth


def run_calibration(paths: list[Path], data_config: dict) -> Calibration | None:
    """The calibration set of the run's int8 graph; None when its training images are gone."""
    paths = [p for p in paths if p.is_file()]
    if not paths:
        return None

    def batches():
        for batch in iterate_batches(paths, data_config, 16, 0):
            if batch.images is not None:
                yield batch.images.numpy()

    return Calibration(calibration_digest(file_digest(p) for p in paths), batches)


def choose(record: dict | None, forbid: tuple[str, ...] = ()) -> str:
    """The fastest eligible engine of a judgement, not one of `forbid`; 'auto' without one."""
    verdicts = (record or {}).get("engines", {})
    eligible = [
        (v["images_per_s"], name)
        for name, v in verdicts.items()
        if v.get("eligible") and v.get("images_per_s") and name not in forbid
    ]
    return max(eligible)[1] if eligible else "auto"


def engine_request(value: str) -> tuple[str, tuple[str, ...]]:
    """`--engine` of predict and serve: (forced engine or 'auto', forbidden engines).

    NAME forces that engine; no-NAME lets the automatic choice take any eligible engine but it."""
    forbid = ()
    if value.startswith("no-"):
        value, forbid = "auto", (value[3:],)
        if forbid[0] not in ENGINES or forbid[0] in ("auto", "torch"):
            raise OptionError(
                f"--engine no-NAME forbids one engine: {forbid[0]!r} is not one of {', '.join(ENGINES[2:])}"
            )
    elif value not in ENGINES:
        raise OptionError(
            f"unknown engine {value!r}: choose auto, one of {', '.join(ENGINES[1:])}, or no-NAME"
        )
    elif value not in ("auto", "torch") and (why := unavailable(value)) is not None:
        raise OptionError(why)
    return value, forbid


def resolve_engine(run_dir: str | Path, classifier, value: str, n_images: int, batch_size: int = 32) -> str:
    """The engine a run predicts `n_images` with for `--engine value`: forced, or the judged choice
    (judged now when none is recorded on this machine and the job is large enough to pay for it)."""
    engine, forbid = engine_request(value)
    record = read_engines(run_dir)
    if engine != "auto":
        if engine in {"onnx-int8", "openvino-int8"}:
            classifier.calibration = _calibration_of(run_dir, classifier)
        classifier.judgement = record  # what the forced engine keeps, when it was judged
        return engine
    if record is None and n_images >= JUDGE_WORTH:
        try:
            record = judge_run(run_dir, classifier, batch_size)
        except ImagefitError as exc:
            log.warning("the run's engines could not be judged (%s): fp32 is used", exc)
    chosen = choose(record, forbid)
    if chosen in {"onnx-int8", "openvino-int8"}:
        classifier.calibration = _calibration_of(run_dir, classifier)
    classifier.judgement = record
    return chosen


def _calibration_of(run_dir: Path, classifier) -> Calibration | None:
    try:
        images = json.loads((Path(run_dir) / JUDGE_IMAGES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return run_calibration([Path(p) for p in images.get("calibration", [])], classifier.data_config)
